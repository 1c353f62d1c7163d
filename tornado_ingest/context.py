"""What every handler is given through its route's kwargs: the config, and the parts that act on it."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

from sinks.base import Sink
from tornado_ingest.bodies import BodyDeadlines
from tornado_ingest.config import Config
from tornado_ingest.delivery import RecordRouter, SinkGate
from tornado_ingest.drain import Drain
from tornado_ingest.idempotency import Idempotency
from tornado_ingest.logs import Network, trusted_networks
from tornado_ingest.metrics import Metrics
from tornado_ingest.settings import ServerSettings


@dataclass
class Context:
    config: Config
    router: RecordRouter  # records to their sinks
    drain: Drain  # requests in flight, and stopping
    bodies: BodyDeadlines  # request bodies that must arrive in time
    metrics: Metrics
    idempotency: Idempotency  # retry-safe requests: answers remembered per msgid
    started_at: float = field(default_factory=time.time)
    trusted_proxies: Sequence[Network] = ()  # read from server.trusted_proxies, once

    @classmethod
    def build(cls, config: Config, sinks: Dict[str, Sink]) -> "Context":
        metrics = Metrics()
        gates = {name: SinkGate(name, sink, config.sinks[name].max_inflight, metrics) for name, sink in sinks.items()}
        metrics.config_loaded(config.digest, config.source)
        return cls(
            config=config,
            router=RecordRouter(gates, config.server.retry_after),
            drain=Drain(),
            bodies=BodyDeadlines(config.server),
            metrics=metrics,
            idempotency=Idempotency.build(config, metrics),
            trusted_proxies=trusted_networks(config.server.trusted_proxies),
        )

    def successor(self, config: Config, gates: Dict[str, SinkGate], idempotency: Idempotency) -> "Context":
        """The Context of a reloaded config: new datasets, keys, limits, sinks and idempotency gates; the same
        drain, body deadlines, metrics and start time (they belong to the process, not to a config)."""
        self.bodies.settings = config.server
        return dataclasses.replace(
            self,
            config=config,
            router=RecordRouter(gates, config.server.retry_after),
            idempotency=idempotency,
            trusted_proxies=trusted_networks(config.server.trusted_proxies),
        )

    @property
    def settings(self) -> ServerSettings:
        return self.config.server

    def not_ready_because(self) -> Optional[str]:
        """Why ``/ready`` must answer 503, or None: draining, or a sink some dataset needs is down."""
        if self.drain.draining:
            return "draining: the service is shutting down"
        down = self.router.sinks_down(self.config.needed_sinks())
        return "sinks down: %s" % ", ".join(down) if down else None
