"""pika's private corners, fenced: the one module of the project that touches them (pika 1.2 to 1.4).

``BatchingConnection`` makes pika's ``AsyncioConnection`` write once per loop
iteration. pika hands its transport each frame apart (method, header and body:
three per message) and the transport sends each with its own ``send()``;
gathering what one loop iteration produced into one write divides the system
calls per message by three or more. It relies on three private parts of pika's
``Connection`` and ``BaseConnection``:

- ``_output_marshaled_frames(marshaled_frames)``: the one funnel through which
  pika outputs the marshaled frames of a method or of a message, counting
  ``bytes_sent`` and ``frames_sent`` as it goes;
- ``_adapter_emit_data(data)``: writes bytes to the transport;
- ``_transport``: that transport, ``None`` until the socket connects and once it is lost.

If an upgrade of pika renames or removes any of them, the connection writes as
before (each frame on its own: slower, never wrong), and
``tests/unit/compat/test_pika.py`` fails naming the pika version and what vanished.

The driver import is guarded here: without pika (a file-only install) ``pika``
is ``None`` and the package still imports; the options then say how to install it.
"""

from __future__ import annotations

from typing import Any, List, Optional

try:
    import pika
    import pika.exceptions
    import pika.spec
    from pika.adapters.asyncio_connection import AsyncioConnection
except ImportError:  # pragma: no cover - exercised on installs without the extra
    pika = None
    AsyncioConnection = None

INSTALL_HINT = "the rabbitmq sink needs pika: pip install 'tornado-ingest[rabbitmq]'"

#: the private methods of pika's connection that batching overrides or calls
BATCHING_METHODS = ("_output_marshaled_frames", "_adapter_emit_data")
#: the private attribute of pika's connection that holds its transport
TRANSPORT_ATTRIBUTE = "_transport"

_Base: Any = AsyncioConnection if AsyncioConnection is not None else object


def batching_methods_present() -> bool:
    """Whether this pika still has the methods ``BatchingConnection`` relies on."""
    return all(callable(getattr(_Base, name, None)) for name in BATCHING_METHODS)


class BatchingConnection(_Base):
    """pika's ``AsyncioConnection``, writing the frames of one loop iteration in one write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._batching = False  # pika's own path until the checks below pass
        self._batch_loop = kwargs["custom_ioloop"]
        self._batched_frames: Optional[List[bytes]] = None
        super().__init__(*args, **kwargs)
        self._batching = batching_methods_present() and hasattr(self, TRANSPORT_ATTRIBUTE)

    @property
    def batches_writes(self) -> bool:
        """Whether this pika has what batching relies on (else every frame is written on its own, as before)."""
        return self._batching

    def _output_marshaled_frames(self, marshaled_frames: Any) -> None:
        if not self._batching:
            super()._output_marshaled_frames(marshaled_frames)
            return
        for marshaled in marshaled_frames:
            self.bytes_sent += len(marshaled)
            self.frames_sent += 1
        if self._batched_frames is None:
            self._batched_frames = list(marshaled_frames)
            self._batch_loop.call_soon(self._write_batch)
        else:
            self._batched_frames.extend(marshaled_frames)

    def _write_batch(self) -> None:
        frames, self._batched_frames = self._batched_frames, None
        if frames and self._transport is not None:  # else the connection was lost meanwhile
            self._adapter_emit_data(b"".join(frames))
