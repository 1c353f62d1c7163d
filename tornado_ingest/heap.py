"""What the service builds at start is set aside from the garbage collector (``gc.freeze``).

A full collection walks every object the process holds; after start that is
tens of thousands (Tornado, the broker clients, the config, the sinks), about
15 ms a walk on this kind of machine, and under load full collections come
several times a second: the p99 of single events through Kafka was 36 ms with
them, 16 ms with that heap frozen. What start builds lives as long as its
config, so it is frozen once the sinks are up. A reload thaws it, so that what
the old config held can be collected, and freezes it again once the sinks the
reload retired are closed. Objects are still freed as usual when nothing
refers to them; only cycles among frozen objects wait for the next thaw.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Collect what is garbage now, then leave every object alive out of future collections."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Every frozen object back in the collector's reach (the next full collection walks them)."""
    gc.unfreeze()
