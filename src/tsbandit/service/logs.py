"""Structured logs: one JSON object per line, on standard output.

Every decision and every reward the service records is logged with its ``decision_id`` (logger
``tsbandit.events``), every request with its route, status and duration (``tsbandit.access``),
and the service's own messages go through ``tsbandit.service``. All of them sit under the
``tsbandit`` logger, which :func:`install_logging` gives one handler:

* ``log_format="json"`` (the default): JSON lines, e.g.
  ``{"ts": "2026-01-01T12:00:00.123Z", "level": "info", "logger": "tsbandit.events",
  "msg": "decision", "event": "decision", "bandit": "offers", "decision_id": "offers~3f...",
  "arm": "b", "propensity": 0.41, "model_version": 7}``;
* ``"text"``: the same fields, human-readable;
* ``"none"``: the service adds no handler and leaves logging to the host application.

>>> import io, json, logging
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(JsonFormatter())
>>> logger = logging.getLogger("tsbandit.doctest")
>>> logger.addHandler(handler); logger.setLevel(logging.INFO); logger.propagate = False
>>> logger.info("reward", extra={"fields": {"decision_id": "b~" + "0" * 32, "reward": 1.0}})
>>> line = json.loads(stream.getvalue())
>>> line["msg"], line["decision_id"], line["reward"]
('reward', 'b~00000000000000000000000000000000', 1.0)
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import IO, Any

from ..errors import ConfigurationError

__all__ = ["DeferredLines", "JsonFormatter", "TextFormatter", "access_log", "emit",
           "emit_lines", "event_log", "install_logging"]

#: Decisions, rewards, expiries (each with its decision id).
event_log = logging.getLogger("tsbandit.events")
#: One line per HTTP request.
access_log = logging.getLogger("tsbandit.access")

_MARK = "_tsbandit_handler"


# (whole second, its text), swapped as one tuple (atomic): one strftime per second, not per line
_second: list[tuple[int, str]] = [(-1, "")]


def _timestamp(created: float) -> str:
    whole = int(created)
    cached_whole, text = _second[0]
    if cached_whole != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second[0] = (whole, text)
    return f"{text}.{int(created % 1 * 1000):03d}Z"


def emit(logger: logging.Logger, msg: str, fields: dict[str, Any],
         level: int = logging.INFO, created: float | None = None) -> None:
    """Log one structured line (``msg`` and its ``fields``), as ``logger.info(msg,
    extra={"fields": fields})`` does, without ``findCaller``'s walk up the stack: the
    per-request and per-decision lines are written from known places, so the record carries
    no source location (``pathname`` is ``"tsbandit"``, ``lineno`` 0). That walk was about a
    third of a line's cost.

    When the line's only destination is the JSON handler of :func:`install_logging` (the
    service's default), the line is formatted and written here, byte for byte what
    :class:`JsonFormatter` would write, without building a ``LogRecord`` and going through
    the handler chain (13-16 us -> about 4 us a line)."""
    if logger.isEnabledFor(level):
        handler = _only_json_handler(logger, level)
        if handler is not None and not fields.keys() & _RESERVED:
            try:
                line = _json_line(logger.name, msg, level, fields,
                                  time.time() if created is None else created)
                with handler.lock:  # type: ignore[union-attr]
                    handler.stream.write(line)
                    handler.flush()
                return
            except Exception:  # the logging module's path below, with its error handling
                pass
        record = logger.makeRecord(logger.name, level, "tsbandit", 0, msg, (), None,
                                   extra={"fields": fields})
        if created is not None:  # a line written later than it happened (DeferredLines)
            record.created = created
            record.msecs = int(created % 1 * 1000)
        logger.handle(record)


def emit_lines(lines: list[tuple[logging.Logger, str, dict[str, Any], float | None]]) -> None:
    """:func:`emit` of each ``(logger, msg, fields, created)`` INFO line, in order; the lines
    that go to the service's JSON handler only are written with one write and one flush
    (under load one request's end writes the lines of a whole coalesced batch)."""
    handler = None
    out = []
    try:
        for logger, msg, fields, created in lines:
            if not logger.isEnabledFor(logging.INFO):
                continue
            h = _only_json_handler(logger, logging.INFO)
            if h is None or (handler is not None and h is not handler) or (
                    fields.keys() & _RESERVED):
                raise LookupError  # not all alike: one at a time
            handler = h
            out.append(_json_line(logger.name, msg, logging.INFO, fields,
                                  time.time() if created is None else created))
        if handler is not None:
            with handler.lock:  # type: ignore[union-attr]
                handler.stream.write("".join(out))
                handler.flush()
        return
    except Exception:  # the logging module's path, line by line, with its error handling
        pass
    for logger, msg, fields, created in lines:
        emit(logger, msg, fields, created=created)


#: JsonFormatter's own keys: fields that would replace them take the logging module's path
_RESERVED = frozenset(("ts", "level", "logger", "msg"))
_encode_line = json.JSONEncoder(separators=(",", ":"), default=str).encode
_heads: dict[tuple[str, str, int], str] = {}


def _json_line(name: str, msg: str, level: int, fields: dict[str, Any], created: float) -> str:
    """The line :class:`JsonFormatter` writes for such a record (and its newline)."""
    key = (name, msg, level)
    head = _heads.get(key)
    if head is None:
        head = _heads[key] = ('","level":' + _encode_line(logging.getLevelName(level).lower())
                              + ',"logger":' + _encode_line(name)
                              + ',"msg":' + _encode_line(msg))
    rest = "," + _encode_line(fields)[1:] if fields else "}"
    return '{"ts":"' + _timestamp(created) + head + rest + "\n"


def _only_json_handler(logger: logging.Logger, level: int) -> logging.StreamHandler | None:
    """The JSON handler :func:`install_logging` gave the ``tsbandit`` logger, when a
    ``level`` line of ``logger`` (a child of it) goes there and nowhere else, through no
    filter; else None."""
    parent = logger.parent
    if (logger.handlers or logger.filters or not logger.propagate or parent is None
            or parent.name != "tsbandit" or parent.propagate or parent.filters
            or len(parent.handlers) != 1):
        return None
    handler = parent.handlers[0]
    if (not getattr(handler, _MARK, False) or handler.filters or level < handler.level
            or type(handler.formatter) is not JsonFormatter
            or not isinstance(handler, logging.StreamHandler)):
        return None
    return handler


class DeferredLines:
    """Log lines of ``logger`` held while HTTP requests are in flight and written once a
    request's response is sent: the lines of the decisions and rewards a request records leave
    its critical path (the executor thread that records a decision no longer formats and writes
    its line before the request can answer).

    The service's timing middleware brackets every request with :meth:`begin` and :meth:`end`;
    ``end`` (after the response) writes every line held so far, in the order they came, with
    the time each happened. A line that comes while no request is in flight (the sweeper, an
    engine call outside a request) is written at once. So no line is lost or held past the end
    of the request during which it came, and a test that reads the log after a request sees it.
    Thread-safe.

    >>> import io
    >>> stream = io.StringIO()
    >>> logger = logging.getLogger("tsbandit.doctest.deferred")
    >>> handler = logging.StreamHandler(stream); handler.setFormatter(TextFormatter())
    >>> logger.addHandler(handler); logger.setLevel(logging.INFO); logger.propagate = False
    >>> lines = DeferredLines(logger)
    >>> lines.begin(); lines.line("decision", {"arm": "a"}); stream.getvalue()
    ''
    >>> lines.end(); "decision arm=a" in stream.getvalue()
    True
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._lock = threading.Lock()
        self._in_flight = 0
        self._held: list[tuple[str, dict[str, Any], float]] = []

    def enabled(self) -> bool:
        """Whether the logger writes INFO lines at all (else don't build them)."""
        return self.logger.isEnabledFor(logging.INFO)

    def line(self, msg: str, fields: dict[str, Any]) -> None:
        """An INFO line: held while a request is in flight, else written now."""
        with self._lock:
            if self._in_flight:
                self._held.append((msg, fields, time.time()))
                return
        emit(self.logger, msg, fields)

    def begin(self) -> None:
        """A request starts."""
        with self._lock:
            self._in_flight += 1

    def end(self, then: tuple[logging.Logger, str, dict[str, Any]] | None = None) -> None:
        """A request ended (its response is sent): write every line held so far, and then
        the line ``then`` (logger, msg, fields; the request's own access line) -- in one
        write when they all go to the service's JSON handler (:func:`emit_lines`)."""
        with self._lock:
            self._in_flight -= 1
            held, self._held = self._held, []
        lines: list[tuple[logging.Logger, str, dict[str, Any], float | None]] = [
            (self.logger, msg, fields, created) for msg, fields, created in held]
        if then is not None:
            lines.append((*then, None))
        if lines:
            emit_lines(lines)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``ts``, ``level``, ``logger``, ``msg``, then the record's
    ``fields`` (``logger.info(msg, extra={"fields": {...}})``) and any exception text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _timestamp(record.created),
                               "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """``ts level logger msg key=value ...`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        text = (f"{_timestamp(record.created)} {record.levelname.lower():7s} {record.name} "
                f"{record.getMessage()}{extra}")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record (test runners and
    servers replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> IO[str]:
        return sys.stdout

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def install_logging(log_format: str = "json", level: str = "INFO",
                    stream: IO[str] | None = None) -> logging.Handler | None:
    """Give the ``tsbandit`` logger one handler writing ``log_format`` lines to ``stream``
    (default standard output); returns it (``None`` for ``"none"``).

    Idempotent: a handler installed by an earlier call is replaced, not duplicated. The
    ``tsbandit`` logger then stops propagating to the root logger, so a host that also logs
    at the root does not print every line twice.
    """
    root = logging.getLogger("tsbandit")
    for h in list(root.handlers):
        if getattr(h, _MARK, False):
            root.removeHandler(h)
    if log_format == "none":
        root.propagate = True
        return None
    if log_format not in ("json", "text"):
        raise ConfigurationError(
            f"log_format == {log_format!r}, must be 'json', 'text' or 'none'")
    handler: logging.Handler = (_StdoutHandler() if stream is None
                                else logging.StreamHandler(stream))
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    return handler
