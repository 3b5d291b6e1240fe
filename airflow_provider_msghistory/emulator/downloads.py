"""Serving a file download: ETag, ``Range`` (206 + Content-Range, 416), ``If-Range``, injected truncation.

Shared by Qlara's storage host and 8x8's download route on the API host.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .base import take
from .content import Content
from .faults import Fault
from .httpserver import Request, Response

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def serve_content(
    request: Request,
    content: Content,
    headers: dict[str, str],
    fault: Fault | None,
    range_error: Callable[[dict[str, str]], Response],
    in_thread: bool = False,
) -> Response:
    """A 200 or 206 response streaming ``content``.

    :param headers: Content-Type, Content-Disposition and an ``ETag`` (needed for ``If-Range``).
    :param fault: a ``truncate`` / ``expire`` fault cuts the body after ``keep_bytes``; ``norange`` ignores
        ``Range`` (the whole file, 200).
    :param range_error: builds the 416 answer from the headers it must carry.
    :param in_thread: render chunks off the event loop (rows take CPU to format).
    """
    size = content.size
    headers = {**headers, "Accept-Ranges": "bytes"}
    first, last, status = 0, size - 1, 200
    ignored = fault is not None and fault.kind == "norange"
    wanted = None if ignored else _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if_range = request.headers.get("If-Range")
    if wanted is not None and (if_range is None or if_range == headers.get("ETag")):
        first = int(wanted.group(1))
        last = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
        if first >= size or first > last:
            return range_error({**headers, "Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = last - first + 1 if size else 0
    headers["Content-Length"] = str(length)
    truncate = fault.keep_bytes if fault is not None and fault.kind in ("truncate", "expire") else None
    stream = take(content.iter_from(first), length)
    return Response(status, headers, stream=stream, truncate_after=truncate, stream_in_thread=in_thread)
