"""The connection pools and TLS contexts of both transports."""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

from airflow_provider_msghistory.client.config import ClientConfig

if TYPE_CHECKING:
    import httpx
    import requests

# Connections of one async client. A triggerer shares one client per connection among all its waits; a
# vendor polled per job (8x8) then has up to a poll's worth of requests in flight at once (1,000 waits,
# 5 s polls, 200 ms latency: about 40; 10,000 waits: up to 400, fewer while their jobs are young).
# httpcore's pool bookkeeping scans its connections once per idle connection on every request (quadratic
# in the pool's size: ~8 ms of CPU per request at 64), so the connections are spread over small pools,
# taken in turn.
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


def async_clients(config: ClientConfig) -> list[httpx.AsyncClient]:
    """The async transport's :data:`ASYNC_POOL` connections, in pools of :data:`POOL_SHARD`."""
    import httpx

    return [
        httpx.AsyncClient(
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            verify=shared_ssl_context(config.verify),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=POOL_SHARD, max_keepalive_connections=POOL_SHARD),
        )
        for _ in range(ASYNC_POOL // POOL_SHARD)
    ]
