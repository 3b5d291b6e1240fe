"""Error hierarchy of the client. No message ever carries a secret (the transport redacts server text)."""

from __future__ import annotations


class MsgHistoryError(Exception):
    """Base class of every error raised by the message-history client."""


class ApiError(MsgHistoryError):
    """The API answered with an error status.

    :param status_code: HTTP status of the response (``None`` when no response stands behind the error).
    :param message: the server's own message, or a short description when the body had none.
    :param endpoint: logical endpoint name, e.g. ``"list_exports"``.
    """

    def __init__(self, status_code: int | None, message: str, endpoint: str) -> None:
        self.status_code = status_code
        self.message = message
        self.endpoint = endpoint
        #: where the client's settings came from (``"connection 'msghistory_default'"``), when known
        self.source = ""
        #: the request that got the answer, ``"GET https://host/path"`` (no query, no credentials)
        self.request_line = ""
        #: what fixes it, in words (``""``: nothing to add to the server's message)
        self.hint = ""
        super().__init__(self._text())

    def _text(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no HTTP status"
        on = f" on {self.request_line}" if self.request_line else ""
        # The fix before the server's words, as the connection test says it; a cut of a long text cuts those.
        said = f"{self.hint} Server said: {self.message}" if self.hint else self.message
        text = f"{self.endpoint}: {status}{on}: {said}"
        return f"{self.source}: {text}" if self.source else text

    def locate(self, source: str, method: str, url: str, hint: str = "") -> ApiError:
        """Say where the error came from (settings and request) and what fixes it."""
        self.source, self.request_line, self.hint = source, f"{method} {url}", hint
        self.args = (self._text(),)
        return self


class AuthenticationError(ApiError):
    """401 (credentials missing or rejected) or 403 (caller IP not whitelisted)."""


class NotFoundError(ApiError):
    """404, or an export id that the export list does not hold."""


class ExportExpiredError(ApiError):
    """The export's download link expired (or is not available yet): regenerate it."""


class RateLimitedError(ApiError):
    """429 still answered after the retry budget was spent.

    :param retry_after: seconds the server asked to wait, when it said.
    """

    def __init__(
        self, status_code: int | None, message: str, endpoint: str, retry_after: float | None = None
    ):
        super().__init__(status_code, message, endpoint)
        self.retry_after = retry_after


class ApiValidationError(ApiError):
    """Any other 4xx: the server refused the request as malformed."""


class ServerError(ApiError):
    """5xx still answered after the retry budget was spent."""


class UnexpectedResponseError(ApiError):
    """A success response whose body the dialect cannot read (no id, no URL, not a list...)."""


class ApiConnectionError(MsgHistoryError):
    """The API could not be reached (connect error, reset, timeout) after the retries allowed.

    :param message: what went wrong, without URLs' query strings or credentials.
    :param endpoint: logical endpoint name.
    """

    def __init__(self, message: str, endpoint: str) -> None:
        self.message = message
        self.endpoint = endpoint
        #: where the client's settings came from (``"connection 'msghistory_default'"``), when known
        self.source = ""
        super().__init__(f"{endpoint}: {message}")

    def locate(self, source: str) -> ApiConnectionError:
        """Say which settings pointed at the unreachable API (the fix is usually there: host, port)."""
        self.source = source
        if source:
            self.args = (f"{source}: {self.endpoint}: {self.message}",)
        return self


class WaitFailedError(MsgHistoryError):
    """A wait for an export ended without a downloadable export (failed, unknown, expired for good).

    :param export_id: the export waited for.
    :param reason: why, in one line.
    """

    def __init__(self, export_id: str, reason: str) -> None:
        self.export_id = export_id
        self.reason = reason
        super().__init__(f"export {export_id}: {reason}")


class WaitTimeoutError(WaitFailedError):
    """The export was not ready before the wait's deadline (``reason`` is the whole message)."""

    def __init__(self, export_id: str, reason: str) -> None:
        self.export_id = export_id
        self.reason = reason
        MsgHistoryError.__init__(self, reason)
