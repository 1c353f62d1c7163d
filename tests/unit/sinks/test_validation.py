"""The validation helpers the config, the sinks' options and the request rules share."""

from __future__ import annotations

import pytest
from voluptuous import MultipleInvalid, Required, Schema

from sinks.validation import SECONDS, TIMEOUT, describe_invalid, did_you_mean, field_path, seconds


def test_field_path():
    assert field_path(["params", "msgid"]) == "params.msgid"
    assert field_path(["data", 3, "x"]) == "data[3].x"
    assert field_path([]) == "body"


def test_did_you_mean():
    assert did_you_mean("rabit", ["rabbit", "local"]) == " (did you mean 'rabbit'?)"
    assert did_you_mean("zzz", ["rabbit"]) == ""


def _only_error(schema, value):
    with pytest.raises(MultipleInvalid) as caught:
        schema(value)
    [error] = caught.value.errors
    return error


def test_describe_invalid_speaks_our_words():
    schema = Schema({Required("port"): int, "address": str})
    assert describe_invalid(_only_error(schema, {"adress": "x", "port": 1}), schema) == (
        "unknown key (did you mean 'address'?)"
    )
    assert describe_invalid(_only_error(schema, {})) == "is required"
    nested = Schema({"server": {"port": int}})
    assert describe_invalid(_only_error(nested, {"server": [1]})) == "expected a mapping"
    assert describe_invalid(_only_error(nested, {"server": [1]}), mapping="an object") == "expected an object"


@pytest.mark.parametrize("value, expected", [(0, 0.0), ("2.5", 2.5), (3600, 3600.0)])
def test_seconds_accepts_numbers_and_numeric_strings(value, expected):
    assert SECONDS(value) == expected


@pytest.mark.parametrize("value", [-1, "soon", float("nan"), float("inf"), None])
def test_seconds_refuses(value):
    with pytest.raises(Exception, match=r"expected a number of seconds \(0 or more\)"):
        SECONDS(value)


def test_one_floor_for_timeouts_and_a_named_range():
    assert TIMEOUT(0.1) == 0.1
    with pytest.raises(Exception, match=r"\(0\.1 or more\)"):
        TIMEOUT(0.05)
    with pytest.raises(Exception, match=r"\(0\.1 to 3600\)"):
        seconds(0.1, 3600)(3601)
