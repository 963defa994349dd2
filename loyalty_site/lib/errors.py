"""
The domain's error vocabulary, shared by every app and independent of any web framework.

A service refuses an operation by raising one of these with a machine-readable `code`, a message for
people and the `path` of the input that is wrong (`lines[0].quantity`, `Idempotency-Key`, or "" when
it is about the request as a whole). The API's exception handler (`loyalty_site.lib.api.errors`)
translates each class to an HTTP status; the admin and the commands show the message.
"""


class DomainError(Exception):
    """A business rule refused the operation (insufficient points, code already used...)."""

    code = "domain_error"

    def __init__(self, message: str, *, path: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        if code:
            self.code = code


class ConflictError(DomainError):
    """The operation clashes with the current state (already used, still referenced, in progress)."""

    code = "conflict"
