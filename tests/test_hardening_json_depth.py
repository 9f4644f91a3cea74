"""JSON nested deeper than any document the API takes is a 400 in the API's error shape on every endpoint, never a 500
(RecursionError), and the depth is found without recursion."""

import json

import pytest

from inventory.models import AccessEvent, AITool
from nhi_portal.parsers import MAX_DEPTH, StrictJSONParser, nesting_depth_exceeds

pytestmark = pytest.mark.django_db

DEEP = 1000


def deep_list(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int = DEEP) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def tool_json(connector_config: str) -> str:
    fields = '"name": "Deep", "slug": "deep", "kind": "agent", "environment": "dev"'
    return f'{{{fields}, "connector_config": {connector_config}}}'


ENDPOINTS = [
    ("gateway", "/api/v1/authorize/"),
    ("security", "/api/v1/import/"),
    ("gateway", "/api/v1/events/"),
    ("owner", "/api/v1/tools/"),
    ("owner", "/api/v1/requests/"),
]


def assert_api_error(response) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert isinstance(body, dict) and body
    # {"detail": ...}, {"field": [...]} or, for the import, {"errors": [{..., "message": ...}]}
    assert "detail" in body or "errors" in body or all(isinstance(v, list) for v in body.values())


@pytest.mark.parametrize(("role", "path"), ENDPOINTS, ids=[p for _, p in ENDPOINTS])
@pytest.mark.parametrize("body", [deep_list(), deep_object()], ids=["list", "object"])
def test_deep_body_is_a_400(api_as, role, path, body):
    response = api_as(role).post(path, body, content_type="application/json")
    assert_api_error(response)
    assert not AccessEvent.objects.exists() and not AITool.objects.exists()


@pytest.mark.parametrize(("role", "path"), ENDPOINTS, ids=[p for _, p in ENDPOINTS])
def test_deep_value_inside_a_valid_looking_body_is_a_400(api_as, role, path):
    # 900 levels: within the decoder's reach, so only the depth check stops it before anything walks the result.
    response = api_as(role).post(path, tool_json(deep_object(900)), content_type="application/json")
    assert_api_error(response)
    assert not AccessEvent.objects.exists() and not AITool.objects.exists()


def test_default_parser_is_the_strict_one(settings):
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_PARSER_CLASSES[0] is StrictJSONParser
    assert {p.__name__ for p in api_settings.DEFAULT_PARSER_CLASSES} >= {"FormParser", "MultiPartParser"}


def test_depth_up_to_the_limit_is_accepted(api_as):
    body = f'{{"tool": "t", "context": {deep_object(MAX_DEPTH - 1)}}}'  # MAX_DEPTH levels in all
    response = api_as("gateway").post("/api/v1/authorize/", body, content_type="application/json")
    assert response.status_code == 200 and response.json()["decision"] == "deny"


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        (deep_list(MAX_DEPTH), False),
        (deep_list(MAX_DEPTH + 1), True),
        (deep_object(MAX_DEPTH + 1), True),
        # Brackets inside strings, escaped quotes included, are text, not structure.
        (json.dumps(["[" * 500, "{" * 500, '\\"[[[' * 100]), False),
        (json.dumps({"k": '"' + "[" * 200}), False),
        # Many siblings are fine: only nesting counts.
        ("[" + ",".join(["[[1]]"] * 5000) + "]", False),
        (json.dumps(["\\", "[" * 200, '\\"[[[', "]" * 90 + "[" * 90]), False),
        # An unterminated string hides nothing that the decoder would reach.
        ("[" * 100 + '"' + "]" * 100, True),
        ('"' + deep_list(200), False),
    ],
)
def test_depth_is_measured_without_recursion(text, too_deep):
    assert nesting_depth_exceeds(text) is too_deep


def test_a_huge_deep_document_is_refused_quickly():
    import time

    text = "[" * 2_000_000 + "]" * 2_000_000
    started = time.perf_counter()
    assert nesting_depth_exceeds(text)
    assert time.perf_counter() - started < 5
