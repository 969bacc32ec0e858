"""Request size limits enforced while reading, so an oversized body is never buffered whole."""

from __future__ import annotations

import json

from fastapi import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import BODY_TOO_LARGE_FLAG, PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from core.errors import PayloadTooLarge

READ_CHUNK = 256 * 1024


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Pure ASGI middleware: refuse a declared Content-Length over the limit at once, and stop reading a body
    (chunked or lying about its length) as soon as it passes the limit. Multipart uploads get
    `max_body_bytes`; every other body (JSON) the much smaller `max_other_bytes`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_other_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_other_bytes = max_body_bytes if max_other_bytes is None else max_other_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_body_bytes if multipart else self.max_other_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    scope[BODY_TOO_LARGE_FLAG] = True
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "type": PROBLEM_BASE + "payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"the request body is larger than {limit} bytes",
                "instance": scope.get("path", ""),
            }
        ).encode()
        headers = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def read_limited(upload: UploadFile, max_bytes: int) -> bytes:
    """Read an uploaded file in chunks, refusing it once it passes `max_bytes`."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(READ_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge(f"the image is larger than {max_bytes} bytes", max_bytes=max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)
