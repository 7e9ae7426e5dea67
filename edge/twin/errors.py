"""Typed errors of the twin, rendered once as Google's error body."""


class TwinError(Exception):
    """An error the twin answers with Google's `{"error": {code, message, status}}` body."""

    http_status = 500
    status = "INTERNAL"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}


class InvalidArgument(TwinError):
    http_status, status = 400, "INVALID_ARGUMENT"


class FailedPrecondition(TwinError):
    http_status, status = 400, "FAILED_PRECONDITION"


class NotFound(TwinError):
    http_status, status = 404, "NOT_FOUND"


class MethodNotAllowed(TwinError):
    http_status, status = 405, "UNIMPLEMENTED"


class AlreadyExists(TwinError):
    http_status, status = 409, "ALREADY_EXISTS"


class PayloadTooLarge(TwinError):
    http_status, status = 413, "INVALID_ARGUMENT"


class Unimplemented(TwinError):
    http_status, status = 501, "UNIMPLEMENTED"


class Unavailable(TwinError):
    http_status, status = 503, "UNAVAILABLE"


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
