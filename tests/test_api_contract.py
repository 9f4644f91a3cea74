"""The API answers as its schema says (issue 12): errors in the documented shapes, and query parameters it cannot read
refused instead of silently ignored. .ci/api-fuzz.sh checks the same with schemathesis against a live server."""

from io import StringIO

import pytest
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft7Validator

from tests.factories import GrantFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def components(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)["components"]


def _shape_of(components, response, name):
    validator = Draft7Validator({"$ref": f"#/components/schemas/{name}", "components": components})
    errors = [error.message for error in validator.iter_errors(response.json())]
    assert errors == [], (response.status_code, response.content)


def test_error_answers_have_the_documented_shapes(api_as, components, owner):
    tool = ToolFactory(owner=owner)
    grant = GrantFactory(identity=IdentityFactory(owner=owner), tool=tool)
    cases = [
        (api_as("anonymous").get("/api/v1/tools/"), 401, "Error"),
        (api_as("gateway").get("/api/v1/tools/"), 403, "Error"),
        (api_as("other_owner").get(f"/api/v1/tools/{tool.pk}/"), 404, "Error"),
        (api_as("owner").post("/api/v1/tools/", {"name": "x\ny"}, format="json"), 400, "FieldErrors"),
        (api_as("owner").post("/api/v1/tools/", "{oops", content_type="application/json"), 400, "Error"),
        (api_as("owner").post("/api/v1/tools/", "name=x", content_type="text/plain"), 415, "Error"),
    ]
    api_as("security").post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "gone"}, format="json")
    again = api_as("security").post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "gone"}, format="json")
    cases.append((again, 409, "FieldErrors"))
    for response, status, shape in cases:
        assert response.status_code == status, response.content
        _shape_of(components, response, shape)


@pytest.mark.parametrize("path", ["/api/v1/tools/1.5/", "/api/v1/findings/x/acknowledge/", "/api/v1/nope/\n/"])
def test_a_path_no_route_takes_is_a_json_404_even_for_a_post(api_as, path):
    for response in (api_as("security").get(path), api_as("security").post(path, {}, format="json")):
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_page_and_page_size_that_cannot_be_read_are_refused(api_as, owner):
    ToolFactory.create_batch(3, owner=owner)
    api = api_as("owner")
    for bad in ("abc", "0", "-1", "", "1.5", "٣"):
        response = api.get(f"/api/v1/tools/?page_size={bad}")
        assert response.status_code == 400 and "page_size" in response.json(), bad
    assert len(api.get("/api/v1/tools/?page_size=2").json()["results"]) == 2
    assert api.get("/api/v1/tools/?page_size=100000").status_code == 200  # served as 500
    for bad in ("", "abc", "0", "9"):
        assert api.get(f"/api/v1/tools/?page={bad}").status_code == 404, bad
    assert api.get("/api/v1/tools/?page=last&page_size=2").json()["previous"] is not None


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("enforces_authorization=true", 200),
        ("enforces_authorization=False", 200),
        ("enforces_authorization=maybe", 400),
        ("enforces_authorization=2", 400),
        ("enforces_authorization=", 400),
        ("status=active", 200),
        ("status=", 400),
        ("status=bogus", 400),
        ("status=bogus&status=active", 400),  # django-filter alone reads the last one only
        ("owner=", 200),  # free text: empty is no filter, as `type: string` allows
        ("ordering=", 200),  # an empty list
        ("ordering=-name", 200),
        ("ordering=nope", 400),
    ],
)
def test_filters_refuse_values_they_cannot_read(api_as, owner, query, status):
    ToolFactory(owner=owner)
    response = api_as("owner").get(f"/api/v1/tools/?{query}")
    assert response.status_code == status, response.content
    if status == 400:
        assert list(response.json()) == [query.split("=")[0]]


def test_frameworks_count_controls_in_the_list_and_list_them_in_the_detail(api_as):
    listed = api_as("owner").get("/api/v1/frameworks/").json()["results"][0]
    assert isinstance(listed["control_count"], int) and "controls" not in listed
    detail = api_as("owner").get(f"/api/v1/frameworks/{listed['id']}/").json()
    assert detail["control_count"] == len(detail["controls"])


def _openapi_to_json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type, so jsonschema can judge a response; and no field that the
    schema does not declare (an answer may not carry more than its documentation says)."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if isinstance(node.get("properties"), dict):
        converted.setdefault("additionalProperties", False)
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted


def test_success_answers_have_the_documented_shapes(api_as, components, owner, security):
    from django.core.management import call_command

    tool = ToolFactory(owner=owner)
    identity = IdentityFactory(owner=owner)
    GrantFactory(identity=identity, tool=None)  # a grant for any tool: `tool` is null
    call_command("scan", stdout=StringIO())  # findings, some about no tool or no identity
    api = api_as("security")
    framework = api.get("/api/v1/frameworks/").json()["results"][0]["id"]
    cases = [
        (api.get(f"/api/v1/tools/{tool.pk}/posture/"), "ToolPosture"),
        (api.get(f"/api/v1/frameworks/{framework}/"), "FrameworkDetail"),
        (api.get("/api/v1/frameworks/"), "PaginatedFrameworkList"),
        (api.get("/api/v1/grants/"), "PaginatedGrantList"),
        (api.get("/api/v1/findings/"), "PaginatedFindingList"),
        (api.post("/api/v1/scans/", {}, format="json"), "Scan"),
        (api.post("/api/v1/authorize/", [], format="json"), "AuthorizeResponseSchema"),
    ]
    assert api.get("/api/v1/findings/").json()["count"] > 0
    converted = _openapi_to_json_schema(components)
    for response, shape in cases:
        assert response.status_code in (200, 202), response.content
        _shape_of(converted, response, shape)
