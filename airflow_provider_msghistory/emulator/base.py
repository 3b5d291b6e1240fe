"""What every vendor's API server shares: the request pipeline and small request/response helpers.

Order per API request: route -> credentials (401) -> rate limit (429) -> injected fault -> latency ->
endpoint. Every request lands in the request log with the status it got. A vendor subclasses
:class:`VendorApp` and says how it routes, authenticates and spells its errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

from .faults import Fault, Faults
from .httpserver import Request, Response
from .ratelimit import RateLimiter, Verdict
from .requestlog import LoggedRequest, RequestLog, has_auth, redact
from .timeutil import parse_offset_datetime


class ApiError(Exception):
    """An error answer of the API: status code, message and, where the vendor has them, its own code.

    :param status: HTTP status.
    :param message: human text.
    :param code: the vendor's error code (8x8's 4018, ...), if any.
    :param headers: extra response headers (``WWW-Authenticate``, ``Retry-After``, ...).
    """

    def __init__(
        self, status: int, message: str, code: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


EndpointHandler = Callable[[Request, "Fault | None"], Response]


class VendorApp(ABC):
    """One vendor's API handler over shared pieces (faults, request log, rate limiter).

    :param faults: fault plan.
    :param log: request log.
    :param latency: seconds added to every API response.
    """

    def __init__(self, faults: Faults, log: RequestLog, latency: float) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds, e.g. latency=0.2")
        self.faults = faults
        self.log = log
        self.latency = latency
        self.limiter: RateLimiter | None = None

    # --------------------------------------------------------------------------- what a vendor defines
    @abstractmethod
    def route(self, request: Request) -> tuple[str, EndpointHandler]:
        """(fault endpoint name, handler) of this request; raise :class:`ApiError` 404/405 otherwise."""

    @abstractmethod
    def authenticate(self, request: Request) -> str | None:
        """Rate-limit identity of valid credentials, else ``None``."""

    @abstractmethod
    def unauthorized(self, request: Request) -> Response:
        """The 401 answer."""

    @abstractmethod
    def error(self, status: int, message: str, request: Request, code: int | None = None) -> Response:
        """An error answer in the vendor's body shape."""

    @abstractmethod
    def rate_limited(self, retry_after: int, request: Request) -> Response:
        """The 429 answer (the pipeline adds the rate-limit headers)."""

    def public(self, request: Request) -> bool:
        """Routes that need no credentials (a login)."""
        return False

    def loggable(self, body_json: Any) -> Any:
        """The request body as the request log keeps it (a vendor redacts passwords here)."""
        return body_json

    # --------------------------------------------------------------------------------------- pipeline
    async def handle_api(self, request: Request) -> Response:
        fault: Fault | None = None
        body_json = self.loggable(maybe_json(request.body))
        try:
            response, fault = await self._pipeline(request)
        except ApiError as exc:
            response = self._error_response(exc, request)
        self.record(request, "api", response, body_json, fault)
        return response

    async def _pipeline(self, request: Request) -> tuple[Response, Fault | None]:
        endpoint, handler = self.route(request)
        verdict: Verdict | None = None
        if not self.public(request):
            identity = self.authenticate(request)
            if identity is None:
                return self.unauthorized(request), None
            verdict = self.limiter.check(identity) if self.limiter is not None else None
            if verdict is not None and not verdict.allowed:
                response = self.rate_limited(verdict.retry_after, request)
                response.headers.update(verdict.headers())
                return response, None
        fault = self.faults.next(endpoint)
        if fault is not None and fault.kind == "reset":
            return Response(0, reset=True), fault
        delay = self.latency + (fault.seconds if fault is not None else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault.status is not None:
            if fault.status == 429:
                response = self.rate_limited(self.faults.retry_after, request)
            else:
                response = self.error(fault.status, "Injected fault: please retry later", request)
        else:
            try:
                response = handler(request, fault)
            except ApiError as exc:
                response = self._error_response(exc, request)
        if verdict is not None:
            response.headers.update(verdict.headers())
        return response, fault

    def _error_response(self, exc: ApiError, request: Request) -> Response:
        response = self.error(exc.status, exc.message, request, exc.code)
        response.headers.update(exc.headers)
        return response

    def record(
        self, request: Request, server: str, response: Response, body_json: Any, fault: Fault | None
    ) -> None:
        self.log.append(
            LoggedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                server=server,
                port=request.port,
                headers=redact(request.headers),
                had_auth=has_auth(request.headers),
                status=0 if response.reset else response.status,
                json=body_json,
                fault=fault.kind if fault is not None else None,
                time=time.time(),
            )
        )


# ------------------------------------------------------------------------------------------- helpers
def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()
    )


def maybe_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (``{}`` when absent and not ``required``)."""
    if not request.body:
        if required:
            raise ApiError(400, "Required request body is missing")
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "JSON parse error: malformed request body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def parse_datetime(value: Any, field: str) -> int:
    try:
        return parse_offset_datetime(value, field)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def int_param(request: Request, name: str, default: int, minimum: int, maximum: int = 10**9) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, e.g. {name}={default}") from None
    if not minimum <= value <= maximum:
        raise ApiError(400, f"{name} must be between {minimum} and {maximum}")
    return value


def take(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    """The first ``length`` bytes of a chunk stream."""
    for chunk in chunks:
        if length <= 0:
            return
        if len(chunk) > length:
            chunk = chunk[:length]
        length -= len(chunk)
        yield chunk
