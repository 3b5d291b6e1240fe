"""What a download serves: a size and the bytes from any offset, streamed in chunks (never the whole file
in memory unless it is small). Each vendor renders its own files (Qlara: ``qlara/content.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Content(Protocol):
    """What a download serves: a known size and the bytes from any offset."""

    @property
    def size(self) -> int: ...

    def iter_from(self, offset: int) -> Iterator[bytes]: ...


class BytesContent:
    """A small file held in memory (an 8x8 part, possibly compressed).

    :param data: the file's bytes as served.
    :param chunk_size: bytes per yielded chunk.
    """

    def __init__(self, data: bytes, chunk_size: int = 64 * 1024) -> None:
        self.data = data
        self._chunk_size = chunk_size

    @property
    def size(self) -> int:
        return len(self.data)

    def iter_from(self, offset: int) -> Iterator[bytes]:
        view = memoryview(self.data)
        for start in range(offset, len(self.data), self._chunk_size):
            yield bytes(view[start : start + self._chunk_size])
