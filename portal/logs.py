"""No secret or password hash in any log: every record is redacted (message, arguments, traceback).

`install_log_redaction` is called by `create_api`, so both servers get it: `uvicorn portal.api.asgi:app`
(uvicorn's loggers are configured before the app is imported) and `reflex run --env prod`, whose Granian
workers (uvicorn under gunicorn when both are installed) run their own logging dictConfig in each worker,
possibly after the app was imported in the parent, replacing the handlers that existed then. So redaction
is done where every record is born, the log record factory, which no logging configuration replaces; the
filter is also put on the handlers present at install, for records built without the factory
(`logging.makeLogRecord`, records received from another process).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

REDACTED = "[REDACTED]"
# Named like a secret (`password`, `password_hash`, `client_secret`, `edge_token`), not a count of them.
_KEYWORD = r"[\w-]*(?:password|passwd|secret)(?!s\b)[\w-]*|[\w-]*(?:api_key|_token)\b"
_RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{REDACTED}"),  # first: it may be any of these
    (re.compile(r"\b(ak|hk)_live_[A-Za-z0-9]{4,}"), rf"\1_live_{REDACTED}"),  # account and HMAC keys
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{4,}"), f"whsec_{REDACTED}"),  # webhook signing secrets
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{4,}"), f"sk-ant-{REDACTED}"),  # Anthropic keys
    (re.compile(r"\bsk-(?!ant-)[A-Za-z0-9_-]{16,}"), f"sk-{REDACTED}"),  # OpenAI keys (sk-..., sk-proj-...)
    # The whole PHC string, `$argon2id$v=19$m=65536,t=3,p=4$salt$hash`, commas included.
    (re.compile(r"\$argon2(id|i|d)\$[A-Za-z0-9+/=,$.-]*"), rf"$argon2\1${REDACTED}"),
    (re.compile(r"(tollgate_session=)[^;\s'\",]+"), rf"\1{REDACTED}"),
    # `password=...` in a form dump, `'password_hash': '...'` in SQL parameters, `"client_secret": "..."`.
    (re.compile(rf"(?i)\b((?:{_KEYWORD})['\"]?\s*[:=]\s*)(?!['\"]?\[REDACTED\])(?:(['\"]).*?\2|[^\s&,;)}}\]]+)"),
     lambda m: f"{m[1]}{m[2] or ''}{REDACTED}{m[2] or ''}"),
]
# One cheap search first: most records hold none of these and cost nothing more.
_MAY_HOLD = re.compile(r"(?i)_live_|whsec_|sk-|\$argon2|tollgate_session|bearer|password|passwd|secret|api_key"
                       r"|_token")
_MARK = "_tollgate_redacted"
_TRACEBACKS = logging.Formatter()
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "_granian", "granian", "granian.access",
                   "gunicorn", "gunicorn.error", "gunicorn.access")


def redact(text: str) -> str:
    """The text with every secret, hash and password it shows replaced by [REDACTED]."""
    if not _MAY_HOLD.search(text):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactedTraceback(Exception):
    """Stands for a logged exception, carrying its traceback as redacted text (for handlers that format
    `exc_info` themselves rather than use `exc_text`)."""


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact the record in place (once; later calls return at once)."""
    if getattr(record, _MARK, False):
        return record
    setattr(record, _MARK, True)
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    # Arguments are redacted one by one, keeping their shape (uvicorn's access log formatter unpacks them).
    args = record.args
    if isinstance(args, tuple) and args:
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
    elif isinstance(args, Mapping) and args:
        record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
        message = None
    if message is not None:
        clean = redact(message)
        if clean != message:  # a secret in an object's str or repr, or split between template and arguments
            record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = redact(_TRACEBACKS.formatException(record.exc_info))
        record.exc_text = text
        record.exc_info = (RedactedTraceback, RedactedTraceback(text), None)
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactSecrets(logging.Filter):
    """A handler filter that redacts each record it sees and lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = RedactSecrets()


def _redacting(factory):
    def make_record(*args, **kwargs) -> logging.LogRecord:
        return redact_record(factory(*args, **kwargs))

    make_record.redacts = True
    return make_record


def install_log_redaction() -> None:
    """Redact every log record of this process from now on; safe to call more than once."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        logging.setLogRecordFactory(_redacting(factory))
    handlers = [*logging.getLogger().handlers,
                *(h for name in _SERVER_LOGGERS for h in logging.getLogger(name).handlers)]
    if logging.lastResort is not None:  # what writes a record when no handler is configured at all
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
