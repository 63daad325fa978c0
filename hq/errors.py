"""One error tree for both sides of the wire.

The server maps each class to its HTTP status and a stable ``code``; the client maps the code
back, so ``except hq.errors.NotFound`` works in the CLI, the agent and the Dash app as it does in
services.
Each class's docstring is its default message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HQError(Exception):
    """HQ failed to handle the request."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.field = field
        self.details = details or {}
        super().__init__(self.message)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(HQError):
    """The request is malformed."""

    status_code = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    """The request is well-formed but its content is invalid."""

    status_code = 422
    code = "validation_failed"


class IdempotencyMismatch(ValidationFailed):
    """This Idempotency-Key was already used with a different request body."""

    code = "idempotency_mismatch"


class PayloadTooLarge(BadRequest):
    """The request body is larger than this server accepts."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(BadRequest):
    """The request body must be JSON: send 'Content-Type: application/json'."""

    status_code = 415
    code = "unsupported_media_type"


class NotAuthenticated(HQError):
    """A valid bearer token is required: send 'Authorization: Bearer <token>'."""

    status_code = 401
    code = "not_authenticated"


class Forbidden(HQError):
    """Your token's role may not do this."""

    status_code = 403
    code = "forbidden"


class NotFound(HQError):
    """No such resource."""

    status_code = 404
    code = "not_found"


class Conflict(HQError):
    """The resource is not in a state that allows this."""

    status_code = 409
    code = "conflict"


class LeaseLost(Conflict):
    """This lease is no longer valid: the job was requeued, cancelled or completed by another."""

    code = "lease_lost"


class Unavailable(HQError):
    """A backing service is unavailable; try again shortly."""

    status_code = 503
    code = "unavailable"


class TransportError(HQError):
    """HQ could not be reached."""

    status_code = 0
    code = "transport"


class IntegrityError(TransportError):
    """The downloaded bytes do not match the sha256 HQ recorded for them; nothing was kept."""

    code = "integrity"


def _all_subclasses(cls: type[HQError]) -> list[type[HQError]]:
    out: list[type[HQError]] = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_for(*, code: str, status_code: int) -> type[HQError]:
    """The error class for a wire ``code``, falling back to the HTTP status."""
    classes = _all_subclasses(HQError)
    for cls in classes:
        if cls.code == code:
            return cls
    for cls in classes:
        if cls.status_code == status_code and cls.__base__ in (HQError, BadRequest):
            return cls
    return HQError
