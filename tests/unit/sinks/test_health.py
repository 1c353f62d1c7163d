"""HealthState: the last event wins, since when is kept, a known cause survives the timeout it explains."""

from __future__ import annotations

from sinks.health import HealthState


def test_starts_down_and_says_why():
    state = HealthState()
    assert not state.up and state.error == "not started"
    assert state.snapshot(url="x").details == {"url": "x"}


def test_changes_are_reported_once_and_since_moves_only_on_a_change():
    state = HealthState()
    assert state.mark_up() is True
    since = state.since
    assert state.mark_up() is False and state.since == since
    assert state.mark_down("broker gone") is True
    down_since = state.since
    assert state.mark_down("still gone") is False and state.since == down_since
    assert state.snapshot().error == "still gone"


def test_keep_cause():
    state = HealthState()
    state.mark_up()
    state.mark_down("connection refused")
    state.mark_down("3 records not acknowledged within 2s", keep_cause=True)
    assert state.error == "connection refused"
    state.mark_up()
    state.mark_down("3 records not acknowledged within 2s", keep_cause=True)
    assert state.error == "3 records not acknowledged within 2s"  # nothing better known
