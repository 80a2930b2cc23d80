"""structlog set-up: JSON lines in production, a readable console locally.

Bind the message id with :func:`bound` around the handling of a message and every
log line of that handling carries it. Values of keys that look like secrets are
masked by a processor, so a careless ``log.info(..., token=...)`` leaks nothing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace
from structlog.contextvars import bound_contextvars as bound

__all__ = ["add_trace_ids", "bound", "configure_logging", "get_logger"]

_SECRET_WORDS = ("secret", "token", "password", "key", "authorization", "signature")


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event):
        if any(word in name.lower() for word in _SECRET_WORDS) and name != "event":
            event[name] = "**********"
    return event


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The current OpenTelemetry span's trace and span ids, so a log line finds its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


#: Loggers handed to FastStream (broker and app), so their lines go through structlog too.
KAFKA_LOGGER = logging.getLogger("buurtalert.kafka")
APP_LOGGER = logging.getLogger("buurtalert.app")


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    """Route structlog and the standard library's logging (FastStream, uvicorn,
    aiokafka) through one chain: JSON lines if ``json``, else a readable console."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
        add_trace_ids,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryStrings) for f in access.filters):
        access.addFilter(DropQueryStrings())


class DropQueryStrings(logging.Filter):
    """uvicorn's access log without query strings: Meta's handshake puts
    ``hub.verify_token`` there (``GET /webhooks/whatsapp?hub.verify_token=...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
