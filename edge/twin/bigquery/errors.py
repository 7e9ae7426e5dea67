"""BigQuery's errors: TwinErrors whose body carries BigQuery's `errors[].reason`, as its clients read it.

BigQuery answers `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status"}}`;
google-cloud-bigquery raises by HTTP status (404 NotFound, 409 Conflict, 400 BadRequest, 412
PreconditionFailed) and, for a failed job, by the `reason` of the job's `errorResult`.
"""

from __future__ import annotations

from edge.twin.errors import TwinError


class BigQueryError(TwinError):
    """An error in BigQuery's shape; `reason` is BigQuery's error reason."""

    http_status, status, reason = 500, "INTERNAL", "backendError"
    location = ""

    def __init__(self, message: str, location: str = ""):
        super().__init__(message)
        self.location = location

    def error_proto(self) -> dict:
        """The ErrorProto form, as a job's `status.errorResult` and `status.errors` carry it."""
        proto = {"reason": self.reason, "message": self.message}
        if self.location:
            proto["location"] = self.location
        return proto

    def body(self) -> dict:
        error = {"message": self.message, "domain": "global", "reason": self.reason}
        if self.location:
            error |= {"locationType": "other", "location": self.location}
        return {"error": {"code": self.http_status, "message": self.message, "errors": [error], "status": self.status}}


class Invalid(BigQueryError):
    http_status, status, reason = 400, "INVALID_ARGUMENT", "invalid"


class InvalidQuery(BigQueryError):
    """SQL the twin cannot run (a syntax error, an unknown column, or SQL outside the twin's subset)."""

    http_status, status, reason = 400, "INVALID_ARGUMENT", "invalidQuery"

    def __init__(self, message: str, location: str = "query"):
        super().__init__(message, location)


class ResourceInUse(BigQueryError):
    http_status, status, reason = 400, "FAILED_PRECONDITION", "resourceInUse"


class NotFound(BigQueryError):
    http_status, status, reason = 404, "NOT_FOUND", "notFound"


class Duplicate(BigQueryError):
    http_status, status, reason = 409, "ALREADY_EXISTS", "duplicate"


class PreconditionFailed(BigQueryError):
    http_status, status, reason = 412, "FAILED_PRECONDITION", "preconditionFailed"


class NotImplementedByTwin(BigQueryError):
    """A part of BigQuery the twin does not emulate; the message says which."""

    http_status, status, reason = 501, "UNIMPLEMENTED", "notImplemented"


class Stopped(BigQueryError):
    """A job cancelled while it ran (google-cloud-bigquery maps `stopped` to no HTTP error)."""

    http_status, status, reason = 400, "CANCELLED", "stopped"


class BackendError(BigQueryError):
    http_status, status, reason = 500, "INTERNAL", "backendError"
