"""The connection pools and TLS contexts of both transports."""

from __future__ import annotations

import functools
import itertools
import ssl
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_msghistory.client.config import ClientConfig

if TYPE_CHECKING:
    import httpx
    import requests

# Connections of one async transport. A triggerer shares one client per connection among all its waits; a
# vendor polled per job (8x8) then has up to a poll's worth of requests in flight at once (1,000 waits,
# 5 s polls, 200 ms latency: about 40; 10,000 waits: up to 400, fewer while their jobs are young).
# Through a proxy the transport runs on httpx, whose pool bookkeeping (httpcore) scans its connections once
# per idle connection on every request (quadratic in the pool's size: ~8 ms of CPU per request at 64), so
# there the connections are spread over small pools, taken in turn.
ASYNC_POOL = 256
POOL_SHARD = 8


def no_auth(request: Any) -> Any:
    """Explicit no-op auth: stops ``requests`` from adding credentials from ``~/.netrc``."""
    return request


def new_session() -> requests.Session:
    """A pooled session that never adds credentials of its own (see :func:`no_auth`)."""
    import requests
    from requests.adapters import HTTPAdapter

    class NoNetrcSession(requests.Session):
        """On each redirect ``requests`` reads ``~/.netrc`` again for the new host; never here (a download's
        redirect may lead anywhere). Credentials the session set itself are dropped too."""

        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            prepared_request.headers.pop("Authorization", None)

    session = NoNetrcSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@functools.lru_cache(maxsize=8)
def shared_ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """One TLS context per ``verify`` setting per process.

    Building one loads the CA bundle (~40 ms and ~0.8 MB each): a triggerer running a thousand async
    clients must neither repeat that per client nor do it on its event loop.
    """
    import httpx

    if verify is False:
        return False
    if verify is True:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=verify)


@functools.lru_cache(maxsize=1)
def _unverified_ssl_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class AsyncResponse(Protocol):
    status_code: int
    headers: Mapping[str, str]

    def aiter_raw(self) -> Any: ...

    async def aclose(self) -> None: ...


class AsyncSender(Protocol):
    """What the async transport sends through: an :class:`H11Pool`, or :class:`HttpxSender` via a proxy."""

    @property
    def is_closed(self) -> bool: ...

    async def send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body_json: Any,
        headers: Mapping[str, str],
    ) -> AsyncResponse: ...

    async def aclose(self) -> None: ...


def proxied(url: str) -> bool:
    """Whether the environment (``HTTP(S)_PROXY`` / ``ALL_PROXY``, less ``NO_PROXY``) sends ``url`` through a
    proxy, as httpx's ``trust_env`` would."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme.lower()) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def async_sender(config: ClientConfig) -> AsyncSender:
    """The async transport's :data:`ASYNC_POOL` connections: h11 on asyncio streams (lean: triggers send
    thousands of small calls), or httpx when a proxy is configured for the API's URL."""
    if proxied(config.base_url):
        return HttpxSender(config)
    from airflow_provider_msghistory.client.transport.h11pool import H11Pool

    verify = shared_ssl_context(config.verify)
    context = verify if isinstance(verify, ssl.SSLContext) else _unverified_ssl_context()
    return H11Pool(context, float(config.connect_timeout), float(config.read_timeout), ASYNC_POOL)


class HttpxSender:
    """``httpx.AsyncClient`` pools (proxies from the environment), in pools of :data:`POOL_SHARD`."""

    def __init__(self, config: ClientConfig) -> None:
        import httpx

        self._clients = [
            httpx.AsyncClient(
                timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
                verify=shared_ssl_context(config.verify),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=POOL_SHARD, max_keepalive_connections=POOL_SHARD),
            )
            for _ in range(ASYNC_POOL // POOL_SHARD)
        ]
        self._next = itertools.cycle(self._clients)

    @property
    def is_closed(self) -> bool:
        return all(client.is_closed for client in self._clients)

    async def send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body_json: Any,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        client = next(self._next)
        built = client.build_request(
            method, url, params=dict(params) if params else None, json=body_json, headers=dict(headers)
        )
        return await client.send(built, stream=True)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
