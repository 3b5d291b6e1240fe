"""An API reply's ``Content-Encoding`` undone in bounded steps, so the reply cap counts decoded bytes as
they are made.

HTTP libraries inflate each network read whole: one 64 KiB read of a gzip bomb becomes ~64 MiB before a
size cap can look at it (twenty waits of one triggerer took 1 GB). Here the raw bytes are inflated at
most :data:`STEP` bytes of output at a time, and the caller stops as soon as its cap is passed. API
requests offer only the encodings handled here (``gzip``, ``deflate``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from airflow_provider_msghistory.client.errors import UnexpectedResponseError

#: what API requests accept (anything else a server sends is refused)
ACCEPT_ENCODING = "gzip, deflate"
#: most decoded bytes one inflate step may produce
STEP = 64 << 10


class BoundedDecoder:
    """Undoes one reply's ``Content-Encoding``, yielding decoded pieces of at most :data:`STEP` bytes.

    :param encoding: the reply's ``Content-Encoding`` header (``None``/empty/``identity``: as is).
    :param endpoint: logical endpoint name for errors.
    """

    def __init__(self, encoding: str | None, endpoint: str) -> None:
        self.endpoint = endpoint
        name = (encoding or "").strip().lower()
        self._first = True
        if name in ("", "identity"):
            self._inflate: zlib._Decompress | None = None
        elif name in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif name == "deflate":
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped; raw deflate found below
        else:
            raise UnexpectedResponseError(
                None, f"the reply is encoded as {name[:40]!r}, which was not asked for; not read", endpoint
            )
        self._deflate = name == "deflate"

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, piece by piece."""
        if self._inflate is None:
            for start in range(0, len(data), STEP):
                yield data[start : start + STEP]
            return
        try:
            if self._first and data:
                self._first = False
                if self._deflate and data[0] & 0x0F != 8:  # no zlib header: a raw deflate stream
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            while True:
                piece = self._inflate.decompress(data, STEP)
                data = self._inflate.unconsumed_tail
                if piece:
                    yield piece
                if not data and len(piece) < STEP:  # a full step may leave output pending: ask again
                    return
        except zlib.error:
            message = "the reply's compressed body is corrupt"
            raise UnexpectedResponseError(None, message, self.endpoint) from None
