"""One redaction for every printer, logger and stored error: URLs, tokens, passwords.

Pure text work (no I/O), so every layer may use it. Patterns catch what looks like a credential
wherever it is written: the password of a URL (``scheme://user:***@host``), ``Bearer``/``Basic``
credentials and ``key=value`` / ``"key": "value"`` pairs whose key names a secret. Clients also
``register`` the literal secrets they hold (an API token, a client secret, an access token), which are
masked wherever they appear — but only values of ``MIN_LITERAL`` characters or more, and only as whole
words: a short value would otherwise mask letters of host names and paths, hiding what an error is about
while protecting nothing a guess could not find.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
MIN_LITERAL = 8
MAX_LITERALS = 256  # a long-lived worker renews tokens for weeks; the oldest have long expired

# Up to the last ``@`` of the word: a password written with a raw ``@`` is still masked whole.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)\S+@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_KEYED = re.compile(
    r"(?i)([\w-]*(?:token|secret|password|passwd|pwd|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\*\*\*)(?!bearer\b|basic\b)[^\s,;\"'&}]+"
)

_known: dict[str, None] = {}  # insertion-ordered set: the oldest go first
_literal: re.Pattern[str] | None = None
_lock = threading.Lock()


def register(*secrets: str | None) -> None:
    """Remember literal secret values so ``redact`` masks them anywhere; short or empty ones are ignored."""
    global _literal
    fresh = [s for s in secrets if s and len(s) >= MIN_LITERAL and s not in _known]
    if not fresh:
        return
    with _lock:
        _known.update(dict.fromkeys(fresh))
        for old in list(_known)[: max(0, len(_known) - MAX_LITERALS)]:
            del _known[old]
        alternatives = "|".join(re.escape(s) for s in sorted(_known, key=len, reverse=True))
        # Whole words only: a secret glued to other letters or digits is another word.
        _literal = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def redact(text: str) -> str:
    """``text`` with every credential it shows replaced by ``***``."""
    if _literal is not None:
        text = _literal.sub(MASK, text)
    text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    text = _BEARER.sub(rf"\1 {MASK}", text)
    return _KEYED.sub(rf"\1{MASK}", text)


class RedactFilter(logging.Filter):
    """A logging filter that redacts each record's final message (install it on handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def redact_logs(*names: str) -> None:
    """Redact every record the handlers of these loggers (``""``: the root) write or send, once each."""
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactFilter) for f in handler.filters):
                handler.addFilter(RedactFilter())


__all__ = ["MASK", "MIN_LITERAL", "RedactFilter", "redact", "redact_logs", "register"]
