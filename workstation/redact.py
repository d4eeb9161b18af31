"""Secrets out of every line we write: masking by pattern, not by exact string.

An error message rarely repeats a secret whole: `http.client.InvalidURL` quotes only the path of a webhook URL,
a URL may carry `user:password@`, a query `?token=...`. `redact` masks what looks like a secret (webhook paths,
userinfo in URLs, password/token/key fields, bearer tokens) and every fragment of the secrets it is given
(the whole value, a URL's path and query, each word of them), so a malformed secret leaks no part of itself.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "***"
_MIN_FRAGMENT = 6           # shorter words of a secret ('T0', 'B0', 'hooks') are left alone: too common
_MIN_TOKEN = 9              # a path segment this long is token-like ('services' is not, a Slack id is)

# Path segments that start the secret part of a webhook URL (Slack /services/, Discord /api/webhooks/, generic).
_HOOK = r"(?:/services/|/api/webhooks/|/webhooks?/|/hooks/|/triggers/|/workflows/)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # a quoted string holding a webhook path: mask to the closing quote (the secret may contain spaces)
    (re.compile(rf"(['\"])([^'\"\n]*?{_HOOK})[^'\"\n]*\1", re.IGNORECASE), rf"\1\2{MASK}\1"),
    # a webhook host (hooks.slack.com, *.webhook.office.com, ...): the whole path
    (re.compile(r"(?i)(\bhttps?://[^/\s'\"]*hook[^/\s'\"]*)/[^\s'\"]*"), rf"\1/{MASK}"),
    # an unquoted webhook path anywhere
    (re.compile(rf"(?i)({_HOOK})[^\s'\"]+"), rf"\1{MASK}"),
    # userinfo in a URL: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s'\"@]+@"), rf"\1{MASK}@"),
    # Authorization: Bearer <token>
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), rf"\1{MASK}"),
    # password=..., "token": "...", api_key: ..., secret=...
    (re.compile(r"(?i)\b((?:pass(?:word|wd)?|pwd|token|secret|api[_-]?key|access[_-]?key|auth(?:orization)?)"
                r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&]+"), rf"\1{MASK}"),
)


def fragments(secret: str) -> list[str]:
    """The pieces of `secret` that may appear alone in a message: the value, for a URL its path, query and
    userinfo, their words and token-like path segments. Longest first; pieces under 6 characters dropped."""
    secret = secret.strip()
    pieces = {secret}
    try:
        parts = urlsplit(secret)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and parts.netloc:
        pieces.update(p for p in (parts.path, parts.query, parts.fragment) if p.strip("/"))
        if "@" in parts.netloc:
            pieces.add(parts.netloc.rsplit("@", 1)[0])
    for piece in list(pieces):
        pieces.update(piece.split())
        pieces.update(seg for seg in re.split(r"[/\s?&=#]", piece) if len(seg) >= _MIN_TOKEN)
    return sorted((p for p in pieces if len(p) >= _MIN_FRAGMENT), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every fragment of `secrets` and everything that looks like a secret replaced by ***."""
    for secret in secrets:
        if secret:
            for piece in fragments(secret):
                text = text.replace(piece, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
