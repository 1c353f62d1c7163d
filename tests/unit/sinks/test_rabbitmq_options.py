"""The RabbitMQ sink's options, without a broker: defaults, the heartbeat rule, config errors, masked passwords."""

from __future__ import annotations

import pytest

from sinks.rabbitmq import RabbitMQSink
from sinks.redact import redact
from tornado_ingest.config import ConfigError, parse_config


def error_of(sink_options, entry_topic="q"):
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "sinks": {"r": dict(type="rabbitmq", **sink_options)},
                "datasets": {"d": {"sink": "r", "entry_topic": entry_topic}},
            }
        )
    return str(caught.value)


def heartbeat_of(sink):
    (heartbeat,) = {node.parameters.heartbeat for node in sink.nodes}
    return heartbeat


def test_options_defaults_and_config_errors():
    sink = RabbitMQSink.from_options("r", {})
    assert [node.redacted_url for node in sink.nodes] == ["amqp://guest:***@localhost:5672/%2F"]
    assert sink.options["failback_after"] == 300
    assert sink.exchange == "" and sink.confirm_timeout == 10 and heartbeat_of(sink) == 30
    assert heartbeat_of(RabbitMQSink.from_options("r", {"url": "amqp://u:p@h/%2F?heartbeat=7"})) == 7
    assert heartbeat_of(RabbitMQSink.from_options("r", {"url": "amqp://u:p@h/%2F?heartbeat=7", "heartbeat": 9})) == 9
    assert sink.nodes[0].parameters.client_properties["connection_name"].startswith("tornado-ingest r@")
    queue = RabbitMQSink.from_options("r", {"declare": {"queues": [{"name": "q", "bind": {"exchange": "e"}}]}}).declare[
        "queues"
    ][0]
    assert queue["bind"] == [{"exchange": "e"}] and queue["arguments"] == {}

    assert error_of({"url": "http://localhost/"}) == "sinks.r.url: expected an amqp:// or amqps:// URL"
    assert error_of({"confirm_timout": 3}).startswith(
        "sinks.r.confirm_timout: unknown key (did you mean 'confirm_timeout'?)"
    )
    assert error_of({"confirm_timeout": 0}).startswith("sinks.r.confirm_timeout:")
    assert error_of({"declare": {"queues": [{"bind": {"exchange": "e"}}]}}).startswith(
        "sinks.r.declare.queues[0].name:"
    )
    assert error_of({}, entry_topic="k" * 256) == "datasets.d.entry_topic: a routing key is at most 255 bytes"
    RabbitMQSink.check_destination({}, "k" * 255)


def test_an_explicit_heartbeat_wins_even_when_it_equals_the_default():
    options = RabbitMQSink.OPTIONS({"url": "amqp://u:p@h/%2F?heartbeat=7", "heartbeat": 30})
    assert options["heartbeat"] == 30
    assert heartbeat_of(RabbitMQSink("r", options)) == 30
    assert RabbitMQSink.OPTIONS({"url": "amqp://u:p@h/%2F?heartbeat=0"})["heartbeat"] == 0
    assert RabbitMQSink.OPTIONS({"url": "amqp://u:p@h/%2F?frame_max=131072"})["heartbeat"] == 30


def test_timeouts_have_a_floor_and_delays_may_be_zero():
    assert error_of({"confirm_timeout": 0.05}) == "sinks.r.confirm_timeout: expected a number of seconds (0.1 or more)"
    assert error_of({"connect_timeout": "0"}) == "sinks.r.connect_timeout: expected a number of seconds (0.1 or more)"
    assert error_of({"reconnect_delay": -1}) == "sinks.r.reconnect_delay: expected a number of seconds (0 or more)"
    options = RabbitMQSink.OPTIONS({"confirm_timeout": "0.1", "reconnect_delay": 0, "reconnect_max_delay": "0"})
    assert (options["confirm_timeout"], options["reconnect_delay"], options["reconnect_max_delay"]) == (0.1, 0, 0)


def test_a_given_connection_name_is_used():
    sink = RabbitMQSink.from_options("r", {"connection_name": "orders gateway"})
    assert sink.nodes[0].parameters.client_properties == {"connection_name": "orders gateway"}


def test_passwords_are_masked():
    assert redact("amqp://guest:s3cret@host:5672/%2F") == "amqp://guest:***@host:5672/%2F"
    assert redact("amqps://u:p%40ss@h/vh?heartbeat=5") == "amqps://u:***@h/vh?heartbeat=5"
    assert redact("amqp://host/%2F") == "amqp://host/%2F"


def test_an_unusable_url_is_refused_without_its_password():
    message = error_of({"url": "amqp://u:s3cret@h:notaport/%2F"})
    assert message.startswith("sinks.r.url: not a usable AMQP URL (amqp://u:***@h:notaport/%2F)"), message
    assert "s3cret" not in message


@pytest.mark.parametrize("password", ["se#cret", "se?cret", "se/cret", "se#cr?et/x"])
def test_a_password_with_url_characters_is_never_printed(password):
    message = error_of({"url": "amqp://guest:%s@localhost:5672/%%2F" % password})
    assert "guest:***@localhost" in message and "percent-encoded" in message
    assert password not in message and "cret" not in message


def test_url_may_list_the_nodes_of_a_cluster_in_order_of_preference():
    urls = ["amqp://u:s3cret@rabbit-1:5672/%2F?heartbeat=7", "amqps://u:s3cret@rabbit-2/%2F"]
    sink = RabbitMQSink.from_options("r", {"url": urls, "failback_after": 0})
    assert [node.redacted_url for node in sink.nodes] == [
        "amqp://u:***@rabbit-1:5672/%2F?heartbeat=7",
        "amqps://u:***@rabbit-2/%2F",
    ]
    assert [node.address for node in sink.nodes] == [("rabbit-1", 5672), ("rabbit-2", 5671)]
    assert heartbeat_of(sink) == 7  # the first URL's ?heartbeat= counts for all, unless the option says otherwise
    health = sink.health()
    assert health.details["url"] == "amqp://u:***@rabbit-1:5672/%2F?heartbeat=7"
    assert health.details["nodes"] == [node.redacted_url for node in sink.nodes]
    assert "s3cret" not in str(health)

    assert error_of({"url": []}) == "sinks.r.url: expected an amqp:// URL or a list of them"
    assert error_of({"url": [urls[0], "http://x/"]}) == "sinks.r.url[1]: expected an amqp:// or amqps:// URL"
    assert error_of({"failback_after": -1}) == "sinks.r.failback_after: expected a number of seconds (0 or more)"
