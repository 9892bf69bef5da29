"""Pure-ASGI middleware: refuse oversize bodies with 413 and oversize URLs with 414 before
anything parses them."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Answer 413 (JSON error) to a request body larger than ``max_bytes``, and 414 to a
    request target (path and query string, as sent) longer than ``max_url_bytes``.

    A declared ``Content-Length`` over the limit is refused at once, unread. A body without one
    (chunked) is read up to the limit and refused as soon as it passes it; within the limit it is
    handed on unchanged. Pure ASGI (no ``BaseHTTPMiddleware``), so the common path costs one
    header lookup.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_url_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.max_url_bytes = None if max_url_bytes is None else int(max_url_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.max_url_bytes is not None:
            query = scope.get("query_string", b"")
            target = len(scope.get("raw_path") or scope["path"].encode())
            target += len(query) + 1 if query else 0
            if target > self.max_url_bytes:
                await _json_error(send, 414, "uri_too_long", f"request target of {target} "
                                  f"bytes is over the limit of {self.max_url_bytes} bytes")
                return
        length: bytes | None = None
        chunked = False
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None and not chunked:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_bytes:
                await self._refuse(send, f"request body of {declared} bytes is over the "
                                         f"limit of {self.max_bytes} bytes")
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and not chunked:
            await self.app(scope, receive, send)
            return
        # no declared length: buffer up to the limit, then replay
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(send, f"request body is over the limit of "
                                         f"{self.max_bytes} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, detail: str) -> None:
        await _json_error(send, 413, "payload_too_large", detail)


async def _json_error(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": {"code": code, "detail": detail}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
