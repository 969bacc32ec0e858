"""Sending a stored object to a client: a redirect to a presigned URL (S3), or a stream (local storage).

Every download route answers HEAD too (`@router.head(..., include_in_schema=False)` on the same function,
which passes `head=request.method == "HEAD"`): clients check a file's size and existence before fetching it.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Response
from fastapi.responses import RedirectResponse, StreamingResponse

from core.errors import NotFound
from core.storage import ObjectNotFound, Storage


def download(
    storage: Storage, key: str, media_type: str, filename: str, missing: str, *, head: bool = False
) -> Response:
    """`missing` is the 404's detail when the object is not there. `head`: the same answer without reading
    the object (a HEAD request: Content-Length from the stored size)."""
    url = storage.presigned_url(key)
    if url:
        return RedirectResponse(url, status_code=307)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if head:
        try:
            headers["Content-Length"] = str(storage.size(key))
        except ObjectNotFound as e:
            raise NotFound(missing) from e
        return Response(media_type=media_type, headers=headers)
    try:
        chunks = storage.iter_chunks(key)
        first = next(chunks, b"")  # a missing object fails here, before the 200 is sent
    except ObjectNotFound as e:
        raise NotFound(missing) from e

    def stream() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(stream(), media_type=media_type, headers=headers)
