"""drf-spectacular postprocessing: the error responses every operation documents."""

from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error has this shape; `errors` names the path of each wrong input.",
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code, e.g. `validation_error`"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "e.g. `lines[0].quantity`; empty for the whole request"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
                "required": ["path", "message"],
            },
        },
    },
    "required": ["error", "message", "errors"],
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `errors` lists each problem with its path",
    "401": "Missing, invalid, revoked or expired credentials",
    "403": "The credentials do not allow this operation",
    "404": "No such object (or no such page of a list)",
    "409": "Conflicts with the current state (already used, still referenced, Idempotency-Key reused)",
    "413": "The request body is larger than the configured limit",
    "415": "The request body is not JSON (or another accepted media type)",
    "429": "Too many requests; retry after the `Retry-After` header's seconds",
    "503": "The database is unavailable; retry after the `Retry-After` header's seconds",
}
UNSAFE_METHODS = {"post", "put", "patch", "delete"}


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["400"]
    if operation.get("security") != [{}]:
        statuses += ["401", "403"]
    paginated = any(parameter.get("name") == "page" for parameter in operation.get("parameters", []))
    if "{" in path or paginated:  # (a page past the last one is a 404 too)
        statuses.append("404")
    if method in UNSAFE_METHODS:
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    return [*statuses, "429", "503"]


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """
    drf-spectacular postprocessing hook: declare the error responses every operation can give, all in
    the one `Error` shape the exception handler produces (`loyalty_site.lib.api.errors`).
    """
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in _error_statuses(path, method, operation):
                responses.setdefault(
                    code,
                    {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": ref}}},
                )
    return result
