"""Fixtures shared by the broker tests: one Kafka (the mock cluster, or ``KAFKA_BOOTSTRAP_SERVERS``) per session,
and the Kafka sink's ``driver``, so that every Kafka sink test runs with both drivers."""

from __future__ import annotations

import os

import pytest

from tests.support import installed_or_skip, skip_or_fail


@pytest.fixture(scope="session")
def kafka_site():
    try:
        import kafka  # noqa: F401
    except ImportError:  # pragma: no cover
        skip_or_fail("kafka-python is not installed")
    from tests.support.kafka_cluster import KafkaSite, MockCluster, MockUnavailable

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        site = KafkaSite(bootstrap)
    else:
        try:
            site = KafkaSite(None, MockCluster())
        except MockUnavailable as exc:
            skip_or_fail(str(exc))
        site.bootstrap = site.mock.bootstrap
    yield site
    site.close()


@pytest.fixture(params=["kafka-python", "confluent"])
def kafka_driver(request):
    """The ``driver`` of the Kafka sinks a test's config builds: each test runs once with each."""
    if request.param == "confluent":
        installed_or_skip("confluent_kafka", "confluent")
    return request.param
