"""A result held in object storage, streamed with HTTP Range support (players seek with it).

Local files go through Starlette's FileResponse, which does the same for a path.

    return ranged_response(remote_file, request.headers.get("range"), "video/mp4", filename)
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from service.jobs.storage import RemoteFile

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ValueError):
    """The requested byte range lies outside the file."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}


def _parse(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive, or None for the whole file (no header, or several ranges)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # multi-range or unknown unit: RFC 9110 lets us answer with the whole file
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"the range '{header}' is outside the {size} bytes", size)
    return start, end


def ranged_response(
    remote: RemoteFile,
    range_header: str | None,
    media_type: str,
    filename: str,
    head_only: bool = False,
) -> StreamingResponse:
    """The bytes of `remote` the Range header asks for; only the headers when `head_only`."""
    size = remote.size
    span = _parse(range_header, size)
    start, end = span if span is not None else (0, size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1 if size else 0),
        "Content-Disposition": f"inline; filename*=utf-8''{quote(filename)}",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    body = remote.iter_range(start, end) if size and not head_only else iter(())
    return StreamingResponse(
        body, status_code=206 if span else 200, media_type=media_type, headers=headers
    )
