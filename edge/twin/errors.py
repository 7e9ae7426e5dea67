"""Typed errors of the twin, rendered once (by edge/twin/server.py) as Google's error body."""

from __future__ import annotations

from http import HTTPStatus


class TwinError(Exception):
    """An error the twin answers with Google's `{"error": {code, message, status}}` body.

    `errors` (the JSON APIs' per-error details, as GCS sends them) and `headers` go into the
    response as given.
    """

    http_status = 500
    status = "INTERNAL"
    errors: list[dict] | None = None
    headers: dict[str, str] = {}  # noqa: RUF012 - read only; an instance gets its own

    def __init__(self, message: str, *, errors: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.http_status, "message": self.message, "status": self.status}
        if self.errors is not None:
            error["errors"] = self.errors
        return {"error": error}


class InvalidArgument(TwinError):
    http_status, status = 400, "INVALID_ARGUMENT"


class FailedPrecondition(TwinError):
    http_status, status = 400, "FAILED_PRECONDITION"


class PermissionDenied(TwinError):
    http_status, status = 403, "PERMISSION_DENIED"


class NotFound(TwinError):
    http_status, status = 404, "NOT_FOUND"


class MethodNotAllowed(TwinError):
    http_status, status = 405, "UNIMPLEMENTED"


class AlreadyExists(TwinError):
    http_status, status = 409, "ALREADY_EXISTS"


class PreconditionFailed(TwinError):
    """A request precondition (GCS's `ifGenerationMatch`...) did not hold."""

    http_status, status = 412, "FAILED_PRECONDITION"


class PayloadTooLarge(TwinError):
    http_status, status = 413, "INVALID_ARGUMENT"


class Unimplemented(TwinError):
    http_status, status = 501, "UNIMPLEMENTED"


class Unavailable(TwinError):
    http_status, status = 503, "UNAVAILABLE"


_BY_STATUS = {cls.http_status: cls for cls in TwinError.__subclasses__() if cls is not FailedPrecondition}


def error_for_status(http_status: int, message: str = "", **details) -> TwinError:
    """The TwinError for an HTTP status known only by its number (a library answered it)."""
    cls = _BY_STATUS.get(http_status)
    message = message or HTTPStatus(http_status).phrase
    if cls is not None:
        return cls(message, **details)
    error = TwinError(message, **details)
    error.http_status = http_status
    return error


# google.rpc.Code numbers, for errors carried inside operations and jobs.
RPC_CODES = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "NOT_FOUND": 5,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
}


def rpc_status(error: TwinError) -> dict:
    """The `google.rpc.Status` form of an error, as operations and jobs carry it."""
    return {"code": RPC_CODES.get(error.status, 2), "message": error.message}
