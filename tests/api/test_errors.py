import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_site.lib.api.errors import exception_handler, flatten_errors
from loyalty_site.lib.errors import ConflictError, DomainError


def test_nested_serializer_errors_become_json_paths():
    detail = {
        "lines": {1: {"quantity": ["Too small."]}},
        "customer": {"email": ["Bad e-mail."], "non_field_errors": ["Pick one."]},
        "items": [{}, {"name": ["Required."]}],
    }

    assert flatten_errors(detail) == [
        {"path": "lines[1].quantity", "message": "Too small.", "code": "invalid"},
        {"path": "customer.email", "message": "Bad e-mail.", "code": "invalid"},
        {"path": "customer", "message": "Pick one.", "code": "invalid"},
        {"path": "items[1].name", "message": "Required.", "code": "invalid"},
    ]


def test_a_prefix_is_prepended():
    assert flatten_errors({"total": ["Negative."]}, "items[3]") == [
        {"path": "items[3].total", "message": "Negative.", "code": "invalid"}
    ]


field_names = st.from_regex(r"[a-z]{1,8}", fullmatch=True)
messages = st.lists(st.from_regex(r"[A-Z][a-z ]{0,20}\.", fullmatch=True), min_size=1, max_size=3)
trees = st.recursive(
    messages,
    lambda children: (
        st.dictionaries(field_names, children, min_size=1, max_size=3)
        | st.dictionaries(st.integers(0, 5), children, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


def _leaves(tree, path=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            child = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
            yield from _leaves(value, child)
    else:
        for message in tree:
            yield path, message


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(field_names, trees, min_size=1, max_size=3))
def test_every_message_appears_once_under_its_path(detail):
    flat = flatten_errors(detail)

    assert [(error["path"], error["message"]) for error in flat] == list(_leaves(detail))


def test_the_domain_error_vocabulary_does_not_depend_on_drf():
    # Services raise these; only the API's exception handler may know about DRF.
    code = (
        "import sys; import loyalty_site.lib.errors as errors; "
        "assert not [m for m in sys.modules if m.startswith(('rest_framework', 'django'))], 'web import'; "
        "assert issubclass(errors.ConflictError, errors.DomainError)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


def test_the_exception_handler_translates_domain_errors():
    refused = exception_handler(DomainError("Not enough points.", path="points", code="insufficient_points"), {})
    clash = exception_handler(ConflictError("Already used.", path="code", code="code_used"), {})

    assert (refused.status_code, refused.data) == (
        400,
        {
            "error": "insufficient_points",
            "message": "Not enough points.",
            "errors": [{"path": "points", "message": "Not enough points.", "code": "insufficient_points"}],
        },
    )
    assert (clash.status_code, clash.data["error"], clash.data["errors"][0]["path"]) == (409, "code_used", "code")
