"""One way to mask secrets: URL passwords and configured secrets become ***, user names stay."""

from __future__ import annotations

import pytest

from sinks.redact import redact


@pytest.mark.parametrize(
    "text, expected",
    [
        ("amqp://guest:s3cret@host:5672/%2F", "amqp://guest:***@host:5672/%2F"),
        ("amqps://u:p%40ss@h/vh?heartbeat=5", "amqps://u:***@h/vh?heartbeat=5"),
        ("amqp://host/%2F", "amqp://host/%2F"),
        ("amqp://u:p#a@ss@h:5672/v", "amqp://u:***@h:5672/v"),  # '#' and '@' inside a password
        ("amqp://guest:se?cr/et@localhost:5672/%2F", "amqp://guest:***@localhost:5672/%2F"),  # not encoded
        ("sasl://alice:hunter2@h1:9092", "sasl://alice:***@h1:9092"),
        ("alice:hunter2@h1:9092", "alice:***@h1:9092"),  # Kafka's bare form
        ("cannot connect to amqp://g:pw@h/: refused", "cannot connect to amqp://g:***@h/: refused"),
        ("connection refused (127.0.0.1:5672)", "connection refused (127.0.0.1:5672)"),
    ],
)
def test_url_passwords(text, expected):
    assert redact(text) == expected


def test_configured_secrets_anywhere():
    assert redact("SASL failed for token t0p-s3cret", ["t0p-s3cret", ""]) == "SASL failed for token ***"
