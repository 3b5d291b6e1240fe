"""A Bearer key obtained by logging in, kept for its lifetime and shared by the whole process.

A vendor that hands out short-lived keys for a username and password (Messangi: 24 h) should see one login
per key lifetime, not one per task or client: every flow with the same (base URL, username, password)
reads one process-wide cache. The key is renewed shortly before it expires, or once after the API answers
401 (it expired early or was revoked). It never appears in a repr, a log line or an error (``secrets``
lists it for the transports' scrubbing and ``on_secret`` hands it to a log masker).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from airflow_provider_msghistory.client.auth import AuthFlow, Flow, Login, Signed
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

# Renew this long before the stated expiry: a request signed just before it may arrive just after.
RENEW_MARGIN = 300.0


@dataclass
class _Key:
    value: str
    expires: float  # wall-clock seconds


_KEYS: dict[str, _Key] = {}  # scope digest -> the current key of those credentials
_KEYS_LOCK = threading.Lock()
_LOGIN_LOCKS: dict[str, threading.Lock] = {}  # scope digest -> one login at a time (threads)


def _now() -> float:
    return time.time()


def forget_login_keys() -> None:
    """Drop every cached key (tests; a process that changed credentials)."""
    with _KEYS_LOCK:
        _KEYS.clear()


class LoginFlow(AuthFlow):
    """``Authorization: Bearer <key>`` with the key from a login request.

    :param base_url: the API base URL (part of the cache scope).
    :param username: the login's user (part of the cache scope).
    :param password: the login's password (a secret; only its digest scopes the cache).
    :param login: the login request (sent without credentials).
    :param read_key: the key from the login's response; raises the dialect's error when there is none.
    :param lifetime: seconds a key lives once issued.
    :param clock: wall clock (default: the module's, which tests move).
    """

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        login: ApiRequest,
        read_key: Callable[[RawResponse], str],
        lifetime: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__({}, (password,))
        material = "\0".join((base_url, username, password)).encode()
        self._scope = hashlib.sha256(material).hexdigest()
        self._login = login
        self._read_key = read_key
        self._lifetime = float(lifetime)
        self._clock = clock or _now
        with _KEYS_LOCK:
            self._lock = _LOGIN_LOCKS.setdefault(self._scope, threading.Lock())
        self._alock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self._login.path!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        key = self._cached(any_age=True)
        return self._secrets + ((key,) if key else ())

    def auth_flow(self) -> Flow:
        """Sign with the cached key (logging in first when there is none); after a 401, drop that key, get
        the current one (one login for every client that saw the 401) and sign once more."""
        key = self._cached() or (yield from self._key())
        response = yield Signed({"Authorization": f"Bearer {key}"})
        if response is not None and response.status_code == 401:
            self._forget(key)
            key = yield from self._key()
            yield Signed({"Authorization": f"Bearer {key}"})

    # --- the key --------------------------------------------------------------------------------------
    def _key(self) -> Generator[Login, RawResponse | None, str]:
        """The cached key, or one from a login (sent by the driver under the scope's lock)."""
        answer = yield Login(self._login, lambda: self._cached() is None, self._lock, self._async_lock)
        if answer is not None:
            return self._store(answer)
        return self._cached() or (yield from self._key())  # the other client's key, unless dropped since

    def _async_lock(self) -> asyncio.Lock:
        """One login at a time on this flow's event loop (a lock belongs to the loop it was made on)."""
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock[0] is not loop:
            self._alock = (loop, asyncio.Lock())
        return self._alock[1]

    def _cached(self, any_age: bool = False) -> str | None:
        with _KEYS_LOCK:
            key = _KEYS.get(self._scope)
        if key is None or (not any_age and key.expires - RENEW_MARGIN <= self._clock()):
            return None
        return key.value

    def _store(self, response: RawResponse) -> str:
        value = self._read_key(response)
        with _KEYS_LOCK:
            _KEYS[self._scope] = _Key(value, self._clock() + self._lifetime)
        if self.on_secret is not None:
            self.on_secret(value)
        return value

    def _forget(self, value: str | None) -> None:
        """Drop ``value`` if it is still the cached key (another client may have renewed it already)."""
        with _KEYS_LOCK:
            key = _KEYS.get(self._scope)
            if key is not None and key.value == value:
                del _KEYS[self._scope]
