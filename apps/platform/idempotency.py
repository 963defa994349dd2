"""
`Idempotency-Key` support for every POST of a DRF view.

Add `IdempotentMixin` first in a view's bases. For a POST carrying the header, after authentication:

- a stored record for (user, key) with the same request digest → the first response is replayed
  (same status and body, header `Idempotent-Replayed: true`) and the handler does not run;
- a stored record with another digest → 409 `idempotency_key_reused`;
- no record → the handler runs inside `transaction.atomic` and, if it answered 2xx, the response is
  stored in the same transaction. A failure (exception or non-2xx answer) stores nothing, so the
  client can retry with the same key. Two concurrent first requests with one key: the unique
  constraint lets one commit, the other rolls back its effect and gets 409.
"""

import hashlib
import json
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, cast

from django.db import IntegrityError, transaction
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from loyalty_site.lib.errors import ConflictError, DomainError

from .models import IdempotencyRecord

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from rest_framework.views import APIView

    _ViewBase = APIView
else:
    _ViewBase = object

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAY_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (e.g. a UUID). Replaying the same request with the same key returns the first "
        "response without a second effect; reusing the key with a different body is refused with 409."
    ),
)


class IdempotentAutoSchema(AutoSchema):
    """Documents the optional `Idempotency-Key` header on every POST."""

    def get_override_parameters(self) -> list[OpenApiParameter | Serializer[Any] | type[Serializer[Any]]]:
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def request_digest(request: Request) -> str:
    """SHA-256 of method, path and the parsed body in canonical form (key order does not matter)."""
    body = request.data  # an unparsable body raises ParseError here: a 400 before anything runs
    if hasattr(body, "dict") and not isinstance(body, dict):
        body = body.dict()
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{request.method}\n{request.path}\n{canonical}".encode()).hexdigest()


def _json_body(data: Any) -> Any:
    """The response body as plain JSON values (Decimals and dates rendered as the client saw them)."""
    if data is None:
        return None
    return json.loads(JSONRenderer().render(data) or b"null")


class IdempotentMixin(_ViewBase):
    """Makes every POST handler of the view idempotent under an `Idempotency-Key` header."""

    schema = IdempotentAutoSchema()
    # The handler and the stored response commit together. A view whose writes must each commit on
    # their own (batches) sets False: its response is then stored after its writes.
    idempotent_in_one_transaction = True
    if TYPE_CHECKING:
        # Declared for the type checker only: `hasattr(self, "post")` must stay false on views without one.
        post: Callable[..., Response]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        key = request.headers.get(HEADER, "").strip()
        if request.method != "POST" or not key or not hasattr(self, "post"):
            return  # (no POST handler: dispatch answers 405 itself)
        if len(key) > MAX_KEY_LENGTH:
            raise DomainError(f"{HEADER} has at most {MAX_KEY_LENGTH} characters.", path=HEADER)
        digest = request_digest(request)
        # Past super().initial() the permission checks passed, and every API view requires an
        # authenticated user (DEFAULT_PERMISSION_CLASSES), so this is never AnonymousUser.
        user = cast("User", request.user)
        record = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if record is not None:
            if record.request_digest != digest or record.path != request.path[:255]:
                raise ConflictError(
                    f"This {HEADER} was already used for a different request.",
                    path=HEADER,
                    code="idempotency_key_reused",
                )
            response = Response(record.response_body, status=record.response_status)
            response[REPLAY_HEADER] = "true"
            raise _Replay(response)
        # The router binds the action to `self.post`; dispatch() looks the handler up after initial(),
        # so wrapping it here covers create() and every POST @action alike.
        self.post = self._idempotent_handler(self.post, request=request, user=user, key=key, digest=digest)

    def _idempotent_handler(
        self, handler: Callable[..., Response], *, request: Request, user: "User", key: str, digest: str
    ) -> Callable[..., Response]:
        def run(*args: Any, **kwargs: Any) -> Response:
            try:
                with transaction.atomic() if self.idempotent_in_one_transaction else nullcontext():
                    response = handler(*args, **kwargs)
                    if 200 <= response.status_code < 300:
                        with transaction.atomic():
                            IdempotencyRecord.objects.create(
                                user=user,
                                key=key,
                                method=request.method or "",
                                path=request.path[:255],
                                request_digest=digest,
                                response_status=response.status_code,
                                response_body=_json_body(response.data),
                            )
            except IntegrityError as error:
                if IdempotencyRecord.objects.filter(user=user, key=key).exists():
                    raise ConflictError(
                        f"A request with this {HEADER} is being processed; retry later.",
                        path=HEADER,
                        code="idempotency_key_in_use",
                    ) from error
                raise
            return response

        return run

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)
