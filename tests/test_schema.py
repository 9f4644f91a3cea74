"""The OpenAPI schema builds without warnings, is served without a CDN, and says what the API really does."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(target), stdout=StringIO(), stderr=StringIO())
    text = target.read_text()
    for path in ("/api/v1/authorize/", "/api/v1/tools/", "/api/v1/requests/{id}/approve/", "/api/v1/findings/"):
        assert path in text


def test_docs_are_served_from_the_package(client):
    page = client.get("/api/docs/").content.decode()
    assert "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page


def test_admin_pages_render(admin_client):
    from django.contrib import admin

    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "url",
    ["/tools/?search=a%00b", "/requests/new/identities/?tool=%C2%B2", "/compliance/?framework=%00", "/audit/?tool=%00"],
)
def test_nul_and_odd_digits_are_400_or_handled_never_500(admin_client, url):
    assert admin_client.get(url).status_code in (200, 400, 403, 404)


def test_nul_in_a_form_post_is_400(admin_client):
    from urllib.parse import urlencode

    body = urlencode({"ids": "1\x00", "action": "acknowledge"})
    response = admin_client.post("/findings/bulk/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_bulk_triage_never_redirects_off_site(admin_client):
    response = admin_client.post(
        "/findings/bulk/", {"ids": ["²", "99999999999999999999"], "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/findings/"


# The schema is the contract (issue 12): every operation says who it is for, what it answers, errors included.


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", path, operation


def test_every_operation_has_its_resource_tag_a_summary_and_a_description(schema):
    for name, path, operation in _operations(schema):
        resource = path.removeprefix("/api/v1/").split("/")[0]
        assert operation["tags"] == [resource], name
        assert operation.get("summary") and operation.get("description"), name


def test_every_operation_documents_the_errors_it_can_give(schema):
    for name, path, operation in _operations(schema):
        codes = set(operation["responses"])
        # All of the API needs credentials; a bad token from one address too often is 429.
        assert {"400", "401", "429"} <= codes, name
        if name != "GET /api/v1/me/":  # every other operation refuses some role (or a session without CSRF)
            assert "403" in codes, name
        paginated = "Paginated" in json.dumps(operation["responses"].get("200", {}))
        if "{" in path or paginated:  # an object the caller may not see; a page past the end
            assert "404" in codes, name
        assert "text/plain" in operation["responses"]["400"]["content"], name  # the NUL refusal
        # The imports take the file as it is (a CSV or JSON export, or multipart `file`): no 415.
        if "requestBody" in operation and name not in ("POST /api/v1/import/", "POST /api/v1/sources/{kind}/import/"):
            assert "415" in codes and list(operation["requestBody"]["content"]) == ["application/json"], name
        for code, response in operation["responses"].items():
            if code.startswith("4"):
                assert "#/components/schemas/" in json.dumps(response["content"]["application/json"]), (name, code)


def test_status_codes_are_the_ones_the_views_answer(schema):
    responses = {name: set(op["responses"]) for name, _, op in _operations(schema)}
    assert "202" in responses["POST /api/v1/scans/"] and "201" not in responses["POST /api/v1/scans/"]
    assert {"200", "201"} <= responses["POST /api/v1/events/"]
    assert "201" in responses["POST /api/v1/requests/{id}/renew/"]
    for name in ("approve", "deny", "cancel", "renew"):
        assert "409" in responses[f"POST /api/v1/requests/{{id}}/{name}/"]
    assert "409" in responses["POST /api/v1/grants/{id}/revoke/"] and "409" in responses["DELETE /api/v1/tools/{id}/"]


def test_null_is_declared_where_it_happens(schema):
    components = schema["components"]["schemas"]
    assert components["Finding"]["properties"]["tool"]["nullable"] is True
    assert components["Finding"]["properties"]["identity"]["nullable"] is True
    assert components["Grant"]["properties"]["tool"]["nullable"] is True
    assert components["Grant"]["properties"]["request"]["nullable"] is True


def test_controls_has_one_type_in_the_frameworks_list_and_detail(schema):
    components = schema["components"]["schemas"]
    assert components["Framework"]["properties"]["control_count"]["type"] == "integer"
    assert "controls" not in components["Framework"]["properties"]
    assert components["FrameworkDetail"]["properties"]["controls"]["type"] == "array"


def test_the_authorize_body_is_generated_from_the_declaration_it_is_checked_by(schema):
    from approvals.authorization import QUESTION

    body = schema["components"]["schemas"]["AuthorizeRequestSchemaRequest"]
    assert list(body["properties"]) == [field.name for field in QUESTION]
    assert sorted(body["required"]) == sorted(field.name for field in QUESTION if field.reference)
    for field in QUESTION:
        prop = body["properties"][field.name]
        if field.reference:
            assert [alt["type"] for alt in prop["oneOf"]] == ["integer", "string"]
            assert prop["oneOf"][1]["maxLength"] == field.max_length
        else:
            assert prop["maxLength"] == field.max_length and prop["nullable"] is True


def test_business_rules_are_schema_constraints(schema):
    from approvals.api.serializers import JUSTIFICATION_PATTERN
    from inventory.detection import registry

    components = schema["components"]["schemas"]
    request = components["AccessRequestRequest"]["properties"]
    assert request["scopes"]["minItems"] == 1 and request["justification"]["pattern"] == JUSTIFICATION_PATTERN
    detectors = components["ScanRequest"]["properties"]["detectors"]["items"]["$ref"].rsplit("/", 1)[1]
    assert components[detectors]["enum"] == [d.key for d in registry.all_detectors()]
    assert components["SuppressInputRequest"]["properties"]["reason"]["pattern"] == "\\S"
    assert components["ToolRequest"]["properties"]["name"]["pattern"].startswith("^[^")
    assert components["EventBatchRequest"]["properties"]["events"]["maxItems"] == 1000


def test_the_justification_pattern_is_the_services_rule():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from approvals.api.serializers import JUSTIFICATION_PATTERN
    from approvals.services.requests import _check_justification
    from nhi_portal.exceptions import PortalError

    words = st.lists(st.text(min_size=1, max_size=8), max_size=7).map(" ".join)

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(words, st.text(max_size=40)))
    def agree(text):
        try:
            _check_justification(text)
            accepted = True
        except PortalError:
            accepted = False
        assert accepted == bool(re.search(JUSTIFICATION_PATTERN, text)), text

    agree()


def test_the_control_character_pattern_is_the_validators_rule():
    from inventory.api.schema import NO_CONTROL_CHARACTERS
    from inventory.validators import has_control_characters

    for code in range(0x3000):
        text = f"a{chr(code)}b"
        assert bool(re.search(NO_CONTROL_CHARACTERS, text)) is not has_control_characters(text), hex(code)


def test_every_reference_in_the_schema_resolves(schema):
    """A `$ref` to a component that does not exist breaks the browsable docs (Redoc refuses the whole schema)."""
    import re

    references = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert references - set(schema["components"]["schemas"]) == set()
