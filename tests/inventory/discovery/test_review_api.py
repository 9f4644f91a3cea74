"""Security's review of what discovery found, through the API: suggested AI tools (accept, dismiss) and the Unassigned
queue (bulk assign). Who may call each endpoint, what each decision writes and audits, that a decision clears the
`ai_tool_unregistered` finding, and that bad input is a 400 that changes nothing."""

from datetime import UTC, datetime

import pytest
import time_machine

from inventory.detection.scan import scan_create, scan_run
from inventory.imports.sources.sync import source_import
from inventory.models import AITool, AIToolSuggestion, AuditEntry, Finding, ServiceIdentity, ToolIdentity
from tests.factories import IdentityFactory, UserFactory
from tests.inventory.discovery.helpers import HOME_TENANT, fixture

pytestmark = pytest.mark.django_db
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
ROLES = [
    ("anonymous", 401),
    ("owner", 403),
    ("other_owner", 403),
    ("manager", 403),
    ("gateway", 403),
    ("security", None),
]


def imported(security, *kinds: str) -> None:
    with time_machine.travel(NOW, tick=False):
        for kind in kinds:
            source_import(actor=security, kind=kind, raw=fixture(kind), account=HOME_TENANT)


def unregistered() -> set[int]:
    with time_machine.travel(NOW, tick=False):
        scan_run(scan_create(detectors=["ai_tool_unregistered"]).pk)
    return set(
        Finding.objects.filter(detector="ai_tool_unregistered").unresolved().values_list("subject_id", flat=True)
    )


def everything() -> dict:
    return {
        "tools": list(AITool.objects.order_by("pk").values()),
        "bindings": list(ToolIdentity.objects.order_by("pk").values()),
        "suggestions": list(AIToolSuggestion.objects.order_by("pk").values()),
        "identities": list(ServiceIdentity.objects.order_by("pk").values()),
        "audit": AuditEntry.objects.count(),
    }


@pytest.fixture
def found(security):
    """GitHub App installations naming two AI tools (CodeRabbit, Devin) and one that is not one."""
    imported(security, "github-app-installations")
    return {s.catalog_key: s for s in AIToolSuggestion.objects.all()}


@pytest.mark.parametrize(("role", "expected"), ROLES)
def test_only_security_may_review(api_as, found, owner, role, expected):
    owned = IdentityFactory(owner=owner).pk  # not in the queue: the one call security gets a 400 for
    client = api_as(role)
    devin, coderabbit = found["devin"], found["coderabbit"]
    answers = [
        client.get("/api/v1/sources/suggestions/"),
        client.post(f"/api/v1/sources/suggestions/{devin.pk}/accept/", {}, format="json"),
        client.post(f"/api/v1/sources/suggestions/{coderabbit.pk}/dismiss/", {"reason": "Evaluated"}, format="json"),
        client.get("/api/v1/sources/unassigned/"),
        client.post("/api/v1/sources/unassigned/assign/", {"identities": [owned], "owner": "owner"}, format="json"),
    ]
    if expected is None:
        assert [a.status_code for a in answers[:4]] == [200, 200, 200, 200]
        assert answers[4].status_code == 400
    else:
        assert [a.status_code for a in answers] == [expected] * 5
        assert AIToolSuggestion.objects.filter(status="open").count() == 2


def test_list_shows_open_suggestions_with_their_identities(api_as, found):
    body = api_as("security").get("/api/v1/sources/suggestions/").json()["results"]
    assert {row["catalog_key"] for row in body} == {"coderabbit", "devin"}
    devin = next(row for row in body if row["catalog_key"] == "devin")
    assert devin["identity_count"] == 1 and devin["identities"][0]["name"].startswith("github:")
    assert devin["status"] == "open" and devin["tool"] is None
    assert api_as("security").get("/api/v1/sources/suggestions/?status=bogus").status_code == 400


def test_list_query_count_is_constant(api_as, security, django_assert_max_num_queries):
    client = api_as("security")
    imported(security, "github-app-installations")
    with django_assert_max_num_queries(8) as few:
        client.get("/api/v1/sources/suggestions/?status=all")
    imported(security, "okta-apps", "anthropic-api-keys", "openai-admin-keys", "entra-service-principals")
    assert AIToolSuggestion.objects.count() >= 5
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/api/v1/sources/suggestions/?status=all")


def test_accept_registers_the_tool_binds_its_identities_and_clears_the_finding(api_as, found, owner):
    devin = found["devin"]
    identity = devin.identities.get()
    assert identity.pk in unregistered()
    response = api_as("security").post(
        f"/api/v1/sources/suggestions/{devin.pk}/accept/", {"owner": "owner", "data_classification": "confidential"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    tool = AITool.objects.get(pk=response.json()["tool"]["id"])
    assert (tool.name, tool.kind, tool.owner, tool.data_classification) == ("Devin", "agent", owner, "confidential")
    assert list(tool.identities.all()) == [identity]
    devin.refresh_from_db()
    assert devin.status == "accepted" and devin.tool == tool and devin.decided_by.username == "sec"
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"tool.created", "ai_suggestion.accepted"} <= actions
    entry = AuditEntry.objects.get(action="ai_suggestion.accepted")
    assert entry.before == {"status": "open", "tool": None} and entry.after["tool"] == tool.pk
    assert identity.pk not in unregistered()


def test_a_decided_suggestion_cannot_be_decided_again(api_as, found):
    client = api_as("security")
    devin = found["devin"]
    assert client.post(f"/api/v1/sources/suggestions/{devin.pk}/accept/", {}, format="json").status_code == 200
    before = everything()
    again = client.post(f"/api/v1/sources/suggestions/{devin.pk}/accept/", {}, format="json")
    dismiss = client.post(f"/api/v1/sources/suggestions/{devin.pk}/dismiss/", {"reason": "x"}, format="json")
    assert again.status_code == dismiss.status_code == 409
    assert everything() == before


@pytest.mark.parametrize(
    "body",
    [{"owner": "nobody"}, {"slug": "not a slug!"}, {"environment": "moon"}, {"data_classification": "secret"},
     {"owner": ["owner"]}],
)  # fmt: skip
def test_accept_with_bad_input_changes_nothing(api_as, found, body):
    before = everything()
    response = api_as("security").post(f"/api/v1/sources/suggestions/{found['devin'].pk}/accept/", body, format="json")
    assert response.status_code == 400 and response.json()
    assert everything() == before


def test_accept_with_a_taken_slug_changes_nothing(api_as, found, owner):
    from tests.factories import ToolFactory

    ToolFactory(slug="devin", owner=owner)
    before = everything()
    response = api_as("security").post(
        f"/api/v1/sources/suggestions/{found['devin'].pk}/accept/", {"slug": "devin"}, format="json"
    )
    assert response.status_code == 400 and "slug" in response.json()
    assert everything() == before
    # Without a slug, a free one is chosen.
    response = api_as("security").post(f"/api/v1/sources/suggestions/{found['devin'].pk}/accept/", {}, format="json")
    assert response.json()["tool"]["slug"] == "devin-2"


def test_dismiss_needs_a_reason_and_clears_the_finding(api_as, found):
    client = api_as("security")
    coderabbit = found["coderabbit"]
    identity = coderabbit.identities.get()
    assert identity.pk in unregistered()
    before = everything()
    for body in ({}, {"reason": "   "}, {"reason": "x" * 2001}):
        assert (
            client.post(f"/api/v1/sources/suggestions/{coderabbit.pk}/dismiss/", body, format="json").status_code == 400
        )
    assert everything() == before
    response = client.post(f"/api/v1/sources/suggestions/{coderabbit.pk}/dismiss/",
                           {"reason": "Code review bot approved by the platform team"}, format="json")  # fmt: skip
    assert response.status_code == 200
    coderabbit.refresh_from_db()
    assert coderabbit.status == "dismissed" and coderabbit.reason.startswith("Code review bot")
    entry = AuditEntry.objects.get(action="ai_suggestion.dismissed")
    assert entry.before == {"status": "open"} and entry.after["status"] == "dismissed"
    assert not AITool.objects.exists()
    assert identity.pk not in unregistered()


def test_unknown_suggestion_is_404(api_as):
    client = api_as("security")
    assert client.post("/api/v1/sources/suggestions/999999/accept/", {}, format="json").status_code == 404
    assert client.post("/api/v1/sources/suggestions/999999/dismiss/", {"reason": "x"}, format="json").status_code == 404


# The Unassigned queue


@pytest.fixture
def queue(security):
    """Fine-grained PATs: `alice-gh` is nobody here, so her token's identity waits in the queue."""
    imported(security, "github-fine-grained-pats", "openai-admin-keys")
    return list(ServiceIdentity.objects.filter(owner__username="unassigned").order_by("pk"))


def test_unassigned_lists_the_queue(api_as, queue):
    body = api_as("security").get("/api/v1/sources/unassigned/").json()
    assert body["count"] == len(queue) >= 2
    assert [row["id"] for row in body["results"]] == [
        i.pk for i in ServiceIdentity.objects.filter(pk__in=[q.pk for q in queue]).order_by("provider", "name", "pk")
    ]


def test_unassigned_list_query_count_is_constant(api_as, security, queue, django_assert_max_num_queries):
    client = api_as("security")
    with django_assert_max_num_queries(8) as few:
        client.get("/api/v1/sources/unassigned/")
    imported(security, "aws-credential-report", "gcp-service-account-keys", "kubernetes-service-accounts")
    assert ServiceIdentity.objects.filter(owner__username="unassigned").count() > len(queue) + 5
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/api/v1/sources/unassigned/")


def test_assign_in_bulk_audited(api_as, queue, owner):
    ids = [i.pk for i in queue]
    response = api_as("security").post("/api/v1/sources/unassigned/assign/", {"identities": ids, "owner": "owner"},
                                       format="json")  # fmt: skip
    assert response.status_code == 200 and response.json()["assigned"] == len(ids)
    assert set(ServiceIdentity.objects.filter(pk__in=ids).values_list("owner", flat=True)) == {owner.pk}
    entries = AuditEntry.objects.filter(action="identity.owner_assigned")
    assert sorted(int(e.object_id) for e in entries) == sorted(ids)
    assert all(e.after == {"owner": owner.pk} and e.before["owner"] != owner.pk for e in entries)
    assert api_as("security").get("/api/v1/sources/unassigned/").json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"identities": [], "owner": "owner"},
        {"identities": ["x"], "owner": "owner"},
        {"identities": [True], "owner": "owner"},
        {"identities": "1", "owner": "owner"},
        {"owner": "owner"},
        {"identities": "QUEUE", "owner": "nobody"},
        {"identities": "QUEUE", "owner": "unassigned"},
        {"identities": "QUEUE", "owner": "inactive"},
        {"identities": "QUEUE+OWNED", "owner": "owner"},
        {"identities": "QUEUE", "owner": ""},
    ],
)
def test_assign_with_bad_input_changes_nothing(api_as, queue, owner, body):
    UserFactory(username="inactive", is_active=False)
    owned = ServiceIdentity.objects.exclude(owner__username="unassigned").first()
    ids = {"QUEUE": [i.pk for i in queue], "QUEUE+OWNED": [i.pk for i in queue] + [owned.pk]}
    named = body.get("identities")
    body = {**body, "identities": ids.get(named, named) if isinstance(named, str) else named}
    body = {k: v for k, v in body.items() if v is not None}
    before = everything()
    response = api_as("security").post("/api/v1/sources/unassigned/assign/", body, format="json")
    assert response.status_code == 400 and response.json()
    assert everything() == before


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "²"])
def test_unassigned_refuses_a_page_that_is_not_a_number_from_1(api_as, queue, page):
    response = api_as("security").get(f"/api/v1/sources/unassigned/?page={page}")
    assert response.status_code == 400 and response.json() == {"page": ["A page number from 1."]}


def test_unassigned_past_the_last_page_is_the_last_page(api_as, queue):
    body = api_as("security").get("/api/v1/sources/unassigned/?page=999").json()
    assert body["page"] == body["pages"] == 1 and len(body["results"]) == len(queue)


def test_the_review_answers_match_their_documented_schemas(api_as, security, queue, owner):
    """The schema the fuzz run checks every answer against (drf-spectacular's), applied here to real answers."""
    from drf_spectacular.generators import SchemaGenerator
    from jsonschema import Draft7Validator

    from tests.test_api_contract import _openapi_to_json_schema

    imported(security, "github-app-installations")
    schema = _openapi_to_json_schema(SchemaGenerator().get_schema(request=None, public=True))

    def check(path: str, method: str, status: int, body) -> None:
        documented = schema["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        Draft7Validator({**documented, "components": schema["components"]}).validate(body)

    client = api_as("security")
    suggestions = client.get("/api/v1/sources/suggestions/?status=all").json()
    assert suggestions["results"] and suggestions["results"][0]["identities"]
    check("/api/v1/sources/suggestions/", "get", 200, suggestions)
    check("/api/v1/sources/unassigned/", "get", 200, client.get("/api/v1/sources/unassigned/").json())
    check("/api/v1/sources/unassigned/", "get", 400, client.get("/api/v1/sources/unassigned/?page=0").json())
    assigned = client.post("/api/v1/sources/unassigned/assign/", {"identities": [queue[0].pk], "owner": "owner"},
                           format="json")  # fmt: skip
    check("/api/v1/sources/unassigned/assign/", "post", 200, assigned.json())
    refused = client.post("/api/v1/sources/unassigned/assign/", {"identities": [queue[0].pk], "owner": "nobody"},
                          format="json")  # fmt: skip
    check("/api/v1/sources/unassigned/assign/", "post", 400, refused.json())
