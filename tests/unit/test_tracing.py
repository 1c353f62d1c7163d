"""Request ids and W3C trace context: taken when sane, generated or dropped otherwise."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from tornado_ingest.tracing import request_id_for, trace_context

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("given", ["req-1", "a" * 128, "7f1c2e0a-9b1e-4f5e-8a9d-1c2b3d4e5f60", "svc:host/1@x=+"])
def test_a_sane_request_id_is_kept(given):
    assert request_id_for(HTTPHeaders({"X-Request-ID": given})) == given


@pytest.mark.parametrize("given", [None, "", "a" * 129, "has space", "new\nline", 'quote"', "é"])
def test_otherwise_a_new_one(given):
    headers = HTTPHeaders() if given is None else HTTPHeaders({"X-Request-ID": given})
    made = request_id_for(headers)
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert request_id_for(headers) != made  # a new one each time


def test_trace_context_passes_through_when_well_formed():
    headers = HTTPHeaders({"traceparent": PARENT, "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"})
    assert trace_context("r", headers) == (
        ("request_id", "r"),
        ("traceparent", PARENT),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    )


@pytest.mark.parametrize(
    "parent",
    [
        "garbage",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # an all-zero trace id is invalid
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
    ],
)
def test_a_bad_traceparent_is_dropped_with_its_tracestate(parent):
    headers = HTTPHeaders({"traceparent": parent, "tracestate": "rojo=1"})
    assert trace_context("r", headers) == (("request_id", "r"),)


def test_an_oversized_tracestate_is_dropped_alone():
    headers = HTTPHeaders({"traceparent": PARENT, "tracestate": "x=" + "a" * 600})
    assert trace_context("r", headers) == (("request_id", "r"), ("traceparent", PARENT))
