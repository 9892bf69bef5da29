"""uvicorn's HTTP protocols, answering the requests they refuse in the service's JSON shape.

uvicorn answers a request its parser refuses -- before any application sees it -- with a
plain-text ``400 Invalid HTTP request received.``. A request target longer than httptools can
parse (65,535 bytes: its URL offsets are 16-bit) is one. These subclasses keep everything else
and answer those with ``{"error": {"code": ..., "detail": ...}}``:

* a request target over :data:`MAX_TARGET_BYTES` -> 414 ``uri_too_long`` (refused as soon as
  the parser has seen that much of it, never buffered further);
* any other unparseable request -> 400 ``malformed_request``.

Targets up to the parser's limit reach the app, where ``max_url_bytes`` (default 8 KiB) answers
414 ``uri_too_long`` itself (service/middleware.py). ``tsbandit serve`` uses these protocols;
under the uvicorn command line pass ``--http tsbandit.service.protocol:HttpToolsJSONProtocol``.

Importing this module imports uvicorn (the ``server`` extra); nothing else does I/O.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_TARGET_BYTES", "H11JSONProtocol", "HttpToolsJSONProtocol", "error_response",
           "protocol_options"]

#: The longest request target the servers' parsers take (httptools: 16-bit URL offsets).
MAX_TARGET_BYTES = 65_535
#: h11's buffer for an incomplete request head: a 64 KiB target and 16 KiB of headers
H11_MAX_INCOMPLETE_EVENT_SIZE = MAX_TARGET_BYTES + 16 * 1024


def error_response(status: int, code: str, detail: str) -> bytes:
    """A complete HTTP/1.1 error response in the service's JSON shape (connection closed)."""
    body = json.dumps({"error": {"code": code, "detail": detail}}).encode()
    reason = {400: b"Bad Request", 414: b"URI Too Long"}.get(status, b"Error")
    return b"".join([b"HTTP/1.1 ", str(status).encode(), b" ", reason, b"\r\n",
                     b"content-type: application/json\r\n",
                     b"content-length: ", str(len(body)).encode(), b"\r\n",
                     b"connection: close\r\n\r\n", body])


def _answer(protocol: Any, msg: str, target_bytes: int) -> None:
    if target_bytes > MAX_TARGET_BYTES:
        out = error_response(414, "uri_too_long", f"request target is over the limit of "
                             f"{MAX_TARGET_BYTES} bytes")
    else:
        out = error_response(400, "malformed_request", f"the HTTP request cannot be parsed "
                             f"({msg.rstrip('.')})")
    protocol.transport.write(out)
    protocol.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard]
    HttpToolsJSONProtocol: Any = None
else:
    class _TooLong(Exception):
        """Raised from the parser's URL callback: the target is over the limit."""

    class HttpToolsJSONProtocol(HttpToolsProtocol):  # type: ignore[no-redef]
        """uvicorn's httptools protocol with JSON answers to what it refuses."""

        def on_url(self, url: bytes) -> None:
            if len(self.url) + len(url) > MAX_TARGET_BYTES:
                self._target_bytes = len(self.url) + len(url)
                raise _TooLong  # the parser fails: send_400_response below answers 414
            super().on_url(url)

        def send_400_response(self, msg: str) -> None:
            _answer(self, msg, getattr(self, "_target_bytes", 0))


from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402


class H11JSONProtocol(H11Protocol):
    """uvicorn's h11 protocol with JSON answers to what it refuses (run it with
    ``h11_max_incomplete_event_size=H11_MAX_INCOMPLETE_EVENT_SIZE``, so that targets up to
    :data:`MAX_TARGET_BYTES` reach the app)."""

    def send_400_response(self, msg: str) -> None:
        _answer(self, msg, 0)


def protocol_options() -> dict[str, Any]:
    """``uvicorn.run`` keywords of the protocol ``tsbandit serve`` runs: httptools when
    installed, else h11 (an import string: worker processes import it themselves)."""
    if HttpToolsJSONProtocol is not None:
        return {"http": f"{__name__}:HttpToolsJSONProtocol"}
    return {"http": f"{__name__}:H11JSONProtocol",  # pragma: no cover
            "h11_max_incomplete_event_size": H11_MAX_INCOMPLETE_EVENT_SIZE}
