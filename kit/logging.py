"""structlog configuration, done once per process by a composition root."""

from __future__ import annotations

import logging
import sys
from typing import Literal, Protocol

import structlog


class ErrorLog(Protocol):
    """The slice of a structlog logger that reports failures (event name + key/values)."""

    def error(self, event: str, **kw: object) -> object:
        """Log a failure; `exc_info=True` adds the exception in hand."""
        ...


def configure_logging(
    fmt: Literal["json", "console", "auto"] = "auto", level: str = "INFO"
) -> None:
    """Log JSON when not on a terminal, readable lines otherwise; never payloads or PHI."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
