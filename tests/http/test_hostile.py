"""Hostile input: always a 4xx envelope, never a 5xx, and the next good request still works."""

from __future__ import annotations

import random

import pytest

from tests.support.data_in import body_of, envelope_of, ingest_request, valid_by_the_rules

GOOD = body_of(ingest_request({"eid": "INTERACT", "n": 1}))

HOSTILE_BODIES = {
    "deep arrays": b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "huge integer": b'{"id": "api.data.in", "ver": "v2", "ts": "1", "params": {"msgid": "m"}, "data": {"n": '
    + b"9" * 100_000
    + b"}}",
    "huge float": body_of(ingest_request()).replace(b'"3.0"', b"1e999"),
    "invalid utf-8": GOOD.replace(b"INTERACT", b"INTER\xc3\x28ACT"),
    "overlong utf-8": GOOD.replace(b"INTERACT", b"\xc0\xafINTERACT"),
    "lone surrogate": GOOD.replace(b"INTERACT", b"\\ud800"),
    "NaN": GOOD.replace(b'"n": 1', b'"n": NaN'),
    "Infinity": GOOD.replace(b'"n": 1', b'"n": Infinity'),
    "-Infinity": GOOD.replace(b'"n": 1', b'"n": -Infinity'),
    "raw null byte": GOOD.replace(b"INTERACT", b"INTER\x00ACT"),
    "null byte outside a string": GOOD + b"\x00",
    "duplicate keys": GOOD.replace(b'"n": 1', b'"n": 1, "n": 2'),
    "duplicate top-level id": GOOD.replace(b'"id": "api.data.in"', b'"id": "api.data.in", "id": "x"'),
    "array body": b"[" + GOOD + b"]",
    "string body": b'"api.data.in"',
    "number body": b"42",
    "null body": b"null",
    "true body": b"true",
    "empty body": b"",
    "whitespace body": b"   \n",
    "truncated": GOOD[:-3],
    "trailing garbage": GOOD + b"}",
    "two documents": GOOD + GOOD,
    "control character in string": GOOD.replace(b"INTERACT", b"INTER\x07ACT"),
    "utf-16 body": GOOD.decode().encode("utf-16"),
}

WRONG_TYPES = [1, 1.5, True, None, "s", [], {}, [1], [{}]]


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
@pytest.mark.gen_test
async def test_hostile_body_is_a_400_and_the_service_goes_on(post, memory_sink, name):
    response = await post("/v2/data/in/events", HOSTILE_BODIES[name])
    assert response.code == 400, (name, response.body[:300])
    envelope = envelope_of(response)
    assert envelope["error"]["code"] == "DATA_INGESTION_INVALID_INPUT"
    assert not memory_sink.records
    assert (await post("/v2/data/in/events", GOOD)).code == 200


@pytest.mark.parametrize("field", ["id", "ver", "ts", "params", "params.msgid", "data"])
@pytest.mark.gen_test
async def test_wrong_types_at_every_field(post, memory_sink, field):
    for value in WRONG_TYPES:
        request = ingest_request()
        if field == "params.msgid":
            request["params"]["msgid"] = value
        else:
            request[field] = value
        if valid_by_the_rules(request):
            continue  # e.g. data = {} is a valid (empty) event
        response = await post("/v2/data/in/events", request)
        assert response.code == 400, (field, value)
        assert field.split(".")[0] in envelope_of(response)["error"]["message"]
    assert not memory_sink.records


@pytest.mark.gen_test
async def test_an_escaped_null_character_is_valid_json_and_round_trips(post, memory_sink):
    response = await post("/v2/data/in/events", GOOD.replace(b"INTERACT", b"IN\\u0000T"))
    assert response.code == 200
    assert memory_sink.documents()[0]["event"]["eid"] == "IN\x00T"


@pytest.mark.gen_test
async def test_batch_over_max_batch_events_is_413(post, app, memory_sink):
    app.context.settings.max_batch_events = 10
    assert (await post("/v2/data/in/events", ingest_request([{"i": i} for i in range(10)]))).code == 200
    response = await post("/v2/data/in/events", ingest_request([{"i": i} for i in range(11)]))
    assert response.code == 413
    envelope = envelope_of(response)
    assert envelope["error"]["code"] == "PAYLOAD_TOO_LARGE" and "max_batch_events" in envelope["error"]["message"]
    assert len(memory_sink.records) == 1


# -- fuzz: random mutations of a valid request, through HTTP ---------------------


def _mutations(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        body = bytearray(GOOD)
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(("flip", "delete", "insert", "truncate", "duplicate"))
            position = rng.randrange(len(body)) if body else 0
            if kind == "flip" and body:
                body[position] = rng.randrange(256)
            elif kind == "delete" and body:
                del body[position : position + rng.randint(1, 8)]
            elif kind == "insert":
                body[position:position] = rng.choice(
                    [b"{", b"[", b'"', b"\\", b"\x00", b"\xff", b"NaN", b",", b"1e999", b"\\ud800"]
                )
            elif kind == "truncate":
                del body[position:]
            elif kind == "duplicate":
                body[position:position] = body[position : position + rng.randint(1, 30)]
        yield bytes(body)


@pytest.mark.gen_test(timeout=60)
async def test_fuzzed_requests_never_get_a_5xx(post, memory_sink):
    statuses = {}
    for body in _mutations(seed=20261126, count=600):
        response = await post("/v2/data/in/events", body)
        statuses[response.code] = statuses.get(response.code, 0) + 1
        assert response.code in (200, 400, 404), (response.code, body)
        envelope = envelope_of(response)
        assert envelope["params"]["status"] == ("SUCCESS" if response.code == 200 else "FAILED")
    assert statuses.get(400, 0) > 300  # most mutations break the request
    assert (await post("/v2/data/in/events", GOOD)).code == 200


# -- slow clients -----------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_a_body_that_never_completes_is_cut_off(app, http_server, http_port, post):
    import asyncio
    import time

    app.context.settings.body_timeout = 0.5
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(
        b"POST /v2/data/in/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"id":'
    )
    await writer.drain()
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed, nothing answered
    assert 0.4 < time.monotonic() - started < 2.6
    assert not app.context.bodies.waiting
    assert (await post("/v2/data/in/events", GOOD)).code == 200
