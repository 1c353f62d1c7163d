"""The spool: an opt-in local store that takes a broker sink's records while the broker is away.

Kafka and RabbitMQ sinks take ``spool: {directory, max_bytes, fsync,
replay_rate}`` (see ``options``). With it, a record the broker cannot take
now (down, unreachable, no acknowledgement within the timeout) is written to
disk and synced, and the client gets 202 Accepted; a replayer delivers the
spooled records once the broker is back, oldest first per destination, with
the same key and headers. Without it nothing changes.

On disk, ``<directory>/<sink>/lane-<n>/<destination>/`` holds append-only
segment files of framed, checksummed records and a durable cursor (how far
delivery got); see ``frames``, ``segments``, ``progress`` and ``lane``.

What is durable when:

- a 202 is sent only once the record is written and fsynced (``fsync:
  batch``, the default, shares one write and one fsync among the records of
  one loop iteration; ``always`` gives each record its own);
- the cursor is written and fsynced after each batch of acknowledgements, and
  a segment is deleted only after the cursor that passed it is on disk;
- at start, a lane left by a dead process is recovered: a torn tail is cut
  off (and counted), damaged bytes are moved aside (``quarantine``), and
  everything not yet delivered is replayed.

Delivery is at least once. A record may reach the broker twice:

- after a crash (``kill -9``, power loss), when the broker had acknowledged
  it but the cursor saying so was not yet on disk (the acknowledgements of the
  last batch, milliseconds of replay);
- after a crash, when it was spooled in doubt (its first attempt
  unacknowledged in time) and the broker took that first attempt after all;
- without a crash, when the first attempt's fate cannot be known: a RabbitMQ
  connection lost before the confirm, or a Kafka producer that gave up on a
  record it had sent. These are counted (``in_doubt`` in ``/health``).

Otherwise a record in doubt is not sent again until the broker's word on its
first attempt comes (``fates``): an outage without a crash costs no duplicate.

The parts: ``sink`` (the base of the broker sinks), ``gate`` (where a record
goes: the broker or the spool), ``store`` (the loop side:
counts, room, appends), ``replayer``, ``fates``, ``disk`` (the one disk
thread), ``messages`` (between them), ``lane``, ``segments``, ``frames``,
``progress``, ``quarantine``, ``durable`` and ``options``.
"""

from __future__ import annotations

from sinks.spool.fates import Fate, Fates, InDoubt
from sinks.spool.gate import SpoolGate
from sinks.spool.options import SPOOL_KEY, SPOOL_OPTIONS
from sinks.spool.sink import SpoolingSink

__all__ = ["Fate", "Fates", "InDoubt", "SPOOL_KEY", "SPOOL_OPTIONS", "SpoolGate", "SpoolingSink"]
