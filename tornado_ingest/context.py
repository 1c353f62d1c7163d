"""What every handler is given through its route's kwargs: the config, and the parts that act on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from sinks.base import Sink
from tornado_ingest.bodies import BodyDeadlines
from tornado_ingest.config import Config
from tornado_ingest.delivery import RecordRouter
from tornado_ingest.drain import Drain
from tornado_ingest.idempotency import Idempotency
from tornado_ingest.settings import ServerSettings


@dataclass
class Context:
    config: Config
    router: RecordRouter  # records to their sinks
    drain: Drain  # requests in flight, and stopping
    bodies: BodyDeadlines  # request bodies that must arrive in time
    idempotency: Idempotency  # retry-safe requests: answers remembered per msgid

    @classmethod
    def build(cls, config: Config, sinks: Dict[str, Sink]) -> "Context":
        max_inflight = {name: spec.max_inflight for name, spec in config.sinks.items()}
        return cls(
            config=config,
            router=RecordRouter(sinks, max_inflight, config.server.retry_after),
            drain=Drain(),
            bodies=BodyDeadlines(config.server),
            idempotency=Idempotency.build(config),
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
