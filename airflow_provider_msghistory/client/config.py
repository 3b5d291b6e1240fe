"""Client configuration: where the API is, how to authenticate, and how patient to be."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_BASE_URL = "https://lora-api.agiletelecom.com/api"

# Largest accepted value of each duration (seconds): beyond these a setting is a typo, and values such as
# ``inf`` or ``1e308`` overflow inside the HTTP libraries at the first request.
MAX_SECONDS = {
    "connect_timeout": 600.0,
    "read_timeout": 3600.0,
    "call_timeout": 86400.0,
    "backoff_base": 3600.0,
    "backoff_max": 3600.0,
}
MAX_RETRY_TIME = 86400.0
MAX_ATTEMPTS = 100
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _shown_url(text: str) -> str:
    """``text`` as safe to echo: hidden when it holds user info, and never with its query or fragment."""
    if "@" in text:
        return "<hidden: contains '@'>"
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    return repr(text if cut < 0 else text[:cut] + "?<redacted>")


def validate_base_url(url: str, field_name: str = "base_url") -> str:
    """Return ``url`` without a trailing slash, or raise ``ValueError`` naming ``field_name``.

    The value is echoed in the message only when it carries no user info (which could hold a secret).
    """
    example = DEFAULT_BASE_URL
    text = (url or "").strip()
    shown = _shown_url(text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"{field_name}: {shown} is not a valid URL; expected e.g. {example!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{field_name}: {shown} is not an http(s) URL with a host; expected e.g. {example!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{field_name}: credentials do not belong in the URL; expected e.g. {example!r}")
    if parts.query or parts.fragment or any(c.isspace() for c in text):
        raise ValueError(f"{field_name}: {shown} must be a plain base URL; expected e.g. {example!r}")
    return text.rstrip("/")


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs. ``repr`` never shows the API key or password.

    :param base_url: API base URL, e.g. ``https://lora-api.agiletelecom.com/api``.
    :param api_key: API key (sent as the dialect's key header); alternative to username/password.
    :param username: login (Qlara: HTTP Basic; Messangi: the login that yields a 24 h key).
    :param password: that login's password.
    :param vendor: dialect name (``"qlara"``, ``"8x8"``, ``"messangi"``).
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for response data.
    :param call_timeout: seconds one API request may take from sending it to the last byte of its reply
        (a reply that drips bytes never trips ``read_timeout``); downloads instead must keep moving (see
        :data:`~airflow_provider_msghistory.client.transport.DOWNLOAD_MIN_BYTES`).
    :param max_attempts: attempts per call, retries included.
    :param max_retry_time: seconds a call may spend on retries in total.
    :param backoff_base: first backoff delay in seconds (doubles each retry).
    :param backoff_max: cap on any single computed backoff delay.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param options: vendor-specific settings for the dialect (e.g. a sub-account id); not in ``repr``
        (connection extras may hold anything).
    :param requests_per_minute: the key's per-minute limit, when not the vendor's default (trial accounts).
    :param requests_per_second: the key's per-second burst limit, when not the vendor's default.
    :param rate_limit_store: a Redis URL (``redis://``, ``rediss://``, ``unix://``) whose bucket every process
        of the API key shares (see :mod:`~airflow_provider_msghistory.client.shared_pacing`); ``None``: each
        process paces on its own. Not in ``repr`` (it may hold the store's password).
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    vendor: str = "qlara"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    call_timeout: float = 300.0
    max_attempts: int = 5
    max_retry_time: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    verify: bool | str = True
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    requests_per_minute: int | None = None
    requests_per_second: int | None = None
    rate_limit_store: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", validate_base_url(self.base_url))
        if self.username is not None or self.password is not None:
            if not self.username or not self.password:
                raise ValueError(
                    "username/password: a login needs both a username and a password "
                    "(or pass only api_key)"
                )
        elif not self.api_key:
            raise ValueError("api_key: empty; set the API key (or a username and password to log in)")
        if self.api_key is not None and self.username is not None:
            raise ValueError("api_key: pass either api_key or username/password, not both")
        if self.api_key is not None and not _header_safe(self.api_key):
            # Refused here, never shown: an HTTP library refuses it later, and its DEBUG log prints headers.
            raise ValueError(
                "api_key: holds a character that cannot go in an HTTP header (non-ASCII or a control "
                "character, e.g. a stray newline from a copy and paste); paste the key again"
            )
        for name, ceiling in MAX_SECONDS.items():
            value = _finite(getattr(self, name), name)
            if not 0 < value <= ceiling:
                raise ValueError(
                    f"{name}: {value!r} is out of range; pass seconds in (0, {ceiling:g}], e.g. 10"
                )
        if not 0 <= _finite(self.max_retry_time, "max_retry_time") <= MAX_RETRY_TIME:
            raise ValueError(f"max_retry_time: pass seconds in [0, {MAX_RETRY_TIME:g}], e.g. 120")
        if not 1 <= int(_finite(self.max_attempts, "max_attempts")) <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts: pass an integer in [1, {MAX_ATTEMPTS}], e.g. 5")
        for name, example in (("requests_per_minute", 1000), ("requests_per_second", 50)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: must be a positive integer, e.g. {example}; got {value!r}")
        if self.rate_limit_store is not None and urlsplit(self.rate_limit_store).scheme not in REDIS_SCHEMES:
            raise ValueError(  # the URL itself is not echoed: it may hold a password
                "rate_limit_store: not a Redis URL; expected e.g. 'redis://redis.example:6379/0'"
            )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never leave in a message or a log line (the auth side adds the header values
        it derives from them, see :class:`~airflow_provider_msghistory.client.scrub.Scrubber`); the shared
        rate limit's Redis password too."""
        store = urlsplit(self.rate_limit_store).password if self.rate_limit_store else None
        return tuple(s for s in (self.api_key, self.password, store and unquote(store)) if s)


def _header_safe(value: str) -> bool:
    """Whether ``value`` can go in an HTTP header as is: printable ASCII only."""
    return all(" " <= char <= "~" for char in value)


def _finite(value: object, name: str) -> float:
    """``value`` as a finite float, or ``ValueError`` naming ``name``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}: {value!r} is not a number, e.g. 10") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: {value!r} is not a finite number, e.g. 10")
    return number
