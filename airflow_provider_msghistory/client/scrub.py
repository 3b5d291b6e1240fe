"""Remove credentials from text that may leave the process (error messages, log lines, UI messages).

A server may echo the request's headers back in an error body, and a message may show a value escaped
(``repr`` of a key with control characters, JSON, a percent-encoded URL). So each secret is removed in every
form it can take: as given, without its auth scheme (``Basic <token>`` -> ``<token>``), and escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
#: Longest server text kept in a message, cut only after scrubbing (a key cut at the edge would survive).
MAX_MESSAGE = 1000
# Shorter values are not scrubbed: replacing a one-letter "secret" everywhere would garble every message.
MIN_SECRET_LENGTH = 4
AUTH_SCHEMES = ("basic", "bearer", "token", "apikey", "digest")


def secret_forms(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """Every form of ``secrets`` worth scrubbing, longest first (so a form never leaves a longer one's tail).

    :param secrets: credential values as the auth side knows them: keys, passwords and the header values
        actually sent (``"Basic dXNlcjpwYXNz"``, ``"Bearer eyJ..."``).
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        values = {secret, secret.strip()}
        scheme, _, token = secret.strip().partition(" ")
        if token and scheme.lower() in AUTH_SCHEMES:
            values.add(token.strip())
        for value in values:
            forms.update(
                (
                    value,
                    value.encode("unicode_escape").decode("ascii"),  # repr() / str() of bytes
                    json.dumps(value)[1:-1],  # JSON strings (also \uXXXX escapes)
                    json.dumps(value, ensure_ascii=False)[1:-1],
                    quote(value, safe=""),  # URLs and form bodies
                    quote(value),
                    repr(value)[1:-1],
                )
            )
    return tuple(sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True))


class Scrubber:
    """Replaces every form of the given secrets with ``***``.

    :param secrets: credential values from the auth side (see :func:`secret_forms`).
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.forms = secret_forms(secrets)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def clipped(self, text: str, limit: int = MAX_MESSAGE) -> str:
        """``text`` scrubbed, then cut to ``limit`` characters (in that order)."""
        text = self(text)
        return text if len(text) <= limit else text[:limit] + "..."

    @property
    def longest(self) -> int:
        """Length of the longest form (text cut later must be scrubbed with this much beyond the cut)."""
        return len(self.forms[0]) if self.forms else 0
