"""Logging: structlog for our own events, the standard library's records (uvicorn, SQLAlchemy, Litestar)
rendered by the same processors, JSON lines in production and readable lines in development.

Why not Litestar's ``StructlogPlugin``? It configures structlog for Litestar's own request logging
middleware, but uvicorn's and SQLAlchemy's records would still need a ``ProcessorFormatter`` of our
own, and the redaction and request-id processors must sit in that one chain anyway. One small
function that sets up structlog and the root handler, called by ``create_app``, is less to learn.

Every line carries the request's ``request_id`` (bound by ``webshop.observability.middleware`` with
structlog's contextvars) and passes through ``redact`` last before rendering, so no password, token,
cookie, authorisation header or card number reaches the output even when someone logs a whole form
or request by mistake (OWASP Logging Cheat Sheet, "Data to exclude").
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

import structlog
from structlog.types import EventDict, Processor

from webshop.config import ServerSettings

REDACTED = "[REDACTED]"
SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|card|cvc|cvv|csrf|session|api[_-]?key|credential",
    re.IGNORECASE,
)
"""Keys whose values are never logged, however they are nested (``password``, ``refresh_token``, ``Cookie``...)."""
_KEY_VALUE = re.compile(
    r"(?i)\b([\w-]*(?:password|passwd|secret|token|authorization|cookie|card_number|csrf)[\w-]*)"
    r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\s&\"',;}\]\\]+)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Card numbers: 13-19 digits, optionally grouped with spaces or dashes (ISO/IEC 7812 lengths).
    (re.compile(r"(?<![\w.])(?:\d[ -]?){12,18}\d(?![\w.])"), "[CARD]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[JWT]"),
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s\"',)]+"), REDACTED),
)
QUIET_LOGGERS = {"uvicorn.access": logging.WARNING, "aiosqlite": logging.WARNING, "asyncio": logging.WARNING}
"""``uvicorn.access`` is replaced by our own request line, which has the request id and route."""
_HANDLER_MARK = "_webshop_handler"


def redact_text(text: str) -> str:
    """Mask card numbers, bearer/basic credentials, JWTs, argon2 hashes and ``password=...`` pairs in ``text``."""
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and SENSITIVE_KEY.search(key) and value not in (None, "", 0, False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value(None, v) for v in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    return value


def redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets by key name (at any depth) and by shape in every string."""
    return {
        key: (redact_text(value) if isinstance(value, str) else _redact_value(None, value))
        if key in {"event", "exception", "logger", "level", "timestamp"}
        else _redact_value(key, value)
        for key, value in event_dict.items()
    }


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _drop_formatted_message(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Drop ``message``, the copy of ``event`` that another handler's formatter left on a stdlib record,
    and ``color_message``, uvicorn's copy of its message with terminal colour codes."""
    if event_dict.get("message") == event_dict.get("event"):
        event_dict.pop("message", None)
    event_dict.pop("color_message", None)
    return event_dict


def log_formatter(log_format: str, *, colors: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The ``logging.Formatter`` every handler uses: ``json`` (one object per line) or ``console``.

    Exceptions become a plain ``exception`` string (never a dump of local variables, which could
    hold a password) and are redacted like everything else.
    """
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder(), _drop_formatted_message],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


def configure_logging(server: ServerSettings, *, stream: IO[str] | None = None) -> None:
    """Set up structlog and the root logger for ``server`` (format and level); safe to call again.

    Args:
        server: ``log_format`` (``json``/``console``) and ``log_level``.
        stream: Where lines go (default: standard output, as a container or systemd expects).
    """
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    stream = stream or sys.stdout
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_formatter(server.log_format, colors=server.log_format == "console" and _tty(stream)))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(server.log_level)
    # uvicorn installs handlers of its own before it loads the app: route its records through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def _tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (``log.warning("event", key=value, ...)``)."""
    return structlog.stdlib.get_logger(name)
