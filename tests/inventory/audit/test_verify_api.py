"""GET and POST /api/v1/audit/verify/ answer as their schema says: `run` null while nothing is queued or running, an
object once a run is queued; `kind` one of the documented values; a body that is not JSON a documented 400."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from inventory.models import AuditEntry, AuditVerification
from tests.test_api_contract import _openapi_to_json_schema, _shape_of

pytestmark = pytest.mark.django_db
URL = "/api/v1/audit/verify/"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def components(schema):
    return _openapi_to_json_schema(schema["components"])


def test_run_is_null_until_one_is_queued_and_both_answers_match_the_schema(api_as, components):
    client = api_as("security")
    idle = client.get(URL)
    assert idle.status_code == 200 and idle.json()["run"] is None and idle.json()["running"] is False
    _shape_of(components, idle, "AuditVerify")
    queued = client.post(URL, {"kind": "incremental"}, format="json")
    assert queued.status_code == 202
    run = queued.json()["run"]
    assert (run["kind"], run["status"], run["requested_by"]) == ("incremental", "queued", "sec")
    _shape_of(components, queued, "AuditVerify")
    _shape_of(components, client.get(URL), "AuditVerify")


def test_kind_is_documented_as_the_values_it_accepts(schema, api_as):
    kind = schema["components"]["schemas"]["VerifyRequestRequest"]["properties"]["kind"]
    enum = schema["components"]["schemas"][kind["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert enum == AuditVerification.Kind.values and kind["default"] == AuditVerification.Kind.FULL
    client = api_as("security")
    assert client.post(URL, {}, format="json").json()["run"]["kind"] == AuditVerification.Kind.FULL
    for value in enum:
        assert client.post(URL, {"kind": value}, format="json").status_code == 202
    assert sorted(AuditVerification.objects.values_list("kind", flat=True)) == sorted(enum)


@pytest.mark.parametrize("kind", ["everything", "", "FULL", 1, None, ["full"]])
def test_a_kind_outside_the_schema_is_a_400_and_queues_nothing(api_as, kind):
    response = api_as("security").post(URL, {"kind": kind}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["kind"]
    assert not AuditVerification.objects.exists()
    assert not AuditEntry.objects.filter(action="audit.verification_queued").exists()


def test_a_body_that_is_not_json_is_a_documented_400(api_as, components):
    response = api_as("security").post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    _shape_of(components, response, "Error")
    assert not AuditVerification.objects.exists()
