"""The Sources page, the Unassigned queue page and the identity page's provenance, from outside: who may open and
post to them, upload -> preview (changes nothing) -> apply (exactly the previewed file), the review decisions, bad
input as a 400 that changes nothing, and query counts that do not grow with the data."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inventory.imports.sources.sync import source_import
from inventory.models import AITool, AIToolSuggestion, AuditEntry, ServiceIdentity, SourceRun
from tests.inventory.discovery.helpers import HOME_TENANT, fixture, state

pytestmark = pytest.mark.django_db
ROLES = [("anonymous", 302), ("owner", 403), ("other_owner", 403), ("manager", 403), ("gateway", 403)]


def upload(kind: str, variant: str = "", **fields) -> dict:
    name = f"{kind}.{'csv' if kind.startswith('aws') else 'json'}"
    return {"kind": kind, "account": HOME_TENANT, "file": SimpleUploadedFile(name, fixture(kind, variant)), **fields}


@pytest.mark.parametrize(("role", "expected"), ROLES)
def test_only_security_may_open_or_post(page_as, security, role, expected):
    source_import(actor=security, kind="github-app-installations", raw=fixture("github-app-installations"))
    suggestion = AIToolSuggestion.objects.first()
    client = page_as(role)
    answers = [
        client.get("/sources/"),
        client.get("/sources/unassigned/"),
        client.post("/sources/preview/", upload("okta-apps")),
        client.post("/sources/apply/", upload("okta-apps", digest="0" * 64)),
        client.post(f"/sources/suggestions/{suggestion.pk}/accept/", {"environment": "prod",
                                                                       "data_classification": "internal"}),
        client.post(f"/sources/suggestions/{suggestion.pk}/dismiss/", {"reason": "no"}),
        client.post("/sources/unassigned/", {"identities": [1], "owner": "owner"}),
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [expected] * len(answers)
    assert SourceRun.objects.count() == 1 and not AITool.objects.exists()
    assert AIToolSuggestion.objects.filter(status="open").count() == 2


def test_security_sees_kinds_runs_suggestions_and_the_queue(page_as, security):
    source_import(actor=security, kind="github-app-installations", raw=fixture("github-app-installations"),
                  account="acme")  # fmt: skip
    body = page_as("security").get("/sources/").content.decode()
    for text in ("aws-credential-report", "GetCredentialReport", "acme", "Devin", "CodeRabbit", "Unassigned queue"):
        assert text in body
    assert 'href="/sources/"' in page_as("security").get("/").content.decode()  # the nav link


def test_page_query_count_is_constant(page_as, security, django_assert_max_num_queries):
    client = page_as("security")
    source_import(actor=security, kind="github-app-installations", raw=fixture("github-app-installations"))
    with django_assert_max_num_queries(20) as few:
        assert client.get("/sources/").status_code == 200
    more = ("okta-apps", "anthropic-api-keys", "openai-admin-keys", "entra-service-principals", "aws-credential-report",
            "github-fine-grained-pats", "kubernetes-service-accounts")  # fmt: skip
    for kind in more:
        source_import(actor=security, kind=kind, raw=fixture(kind), account=HOME_TENANT)
    assert AIToolSuggestion.objects.count() >= 5 and SourceRun.objects.count() >= 8
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/sources/").status_code == 200


@pytest.mark.parametrize("htmx", [False, True])
def test_preview_changes_nothing_then_apply_imports_that_file(page_as, htmx):
    client = page_as("security")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    before = state()
    response = client.post("/sources/preview/", upload("okta-apps"), **headers)
    assert response.status_code == 200
    body = response.content.decode()
    digest = hashlib.sha256(fixture("okta-apps")).hexdigest()
    assert f'value="{digest}"' in body
    assert "Apply" in body and ("<html" in body) is not htmx
    assert state() == before
    response = client.post("/sources/apply/", upload("okta-apps", digest=digest), **headers)
    assert response.status_code == 200 if htmx else 302
    run = SourceRun.objects.get()
    assert run.file_digest == digest and run.counts["created"]["identities"] == 3
    assert ServiceIdentity.objects.count() == 3


def test_apply_refuses_a_file_that_was_not_previewed(page_as):
    client = page_as("security")
    previewed = hashlib.sha256(fixture("okta-apps")).hexdigest()
    before = state()
    other = client.post("/sources/apply/", upload("okta-apps", "2", digest=previewed))
    assert other.status_code == 400 and "not the file that was previewed" in other.content.decode()
    for digest in ("", "xyz", "A" * 64):
        assert client.post("/sources/apply/", upload("okta-apps", digest=digest)).status_code == 400
    assert state() == before


def test_bad_file_preview_names_line_and_field_and_changes_nothing(page_as):
    client = page_as("security")
    before = state()
    response = client.post("/sources/preview/", upload("aws-credential-report", "bad"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "nothing was changed" in body and "line " in body
    for bad in ({"kind": "nope"}, {"file": SimpleUploadedFile("x.json", b"   ")}, {"account": "a" * 201}):
        assert client.post("/sources/preview/", {**upload("okta-apps"), **bad}).status_code == 400
    assert state() == before


def test_accept_and_dismiss_from_the_page(page_as, security, owner):
    source_import(actor=security, kind="github-app-installations", raw=fixture("github-app-installations"))
    devin, coderabbit = (AIToolSuggestion.objects.get(catalog_key=key) for key in ("devin", "coderabbit"))
    client = page_as("security")
    response = client.post(f"/sources/suggestions/{devin.pk}/accept/",
                           {"owner": "owner", "environment": "prod", "data_classification": "internal"})  # fmt: skip
    tool = AITool.objects.get()
    assert response.status_code == 302 and response.url == tool.get_absolute_url()
    assert tool.owner == owner and list(tool.identities.all()) == list(devin.identities.all())
    before = AuditEntry.objects.count()
    assert client.post(f"/sources/suggestions/{coderabbit.pk}/dismiss/", {"reason": ""}).status_code == 302
    coderabbit.refresh_from_db()
    assert coderabbit.status == "open" and AuditEntry.objects.count() == before
    client.post(f"/sources/suggestions/{coderabbit.pk}/dismiss/", {"reason": "Approved code review bot"})
    coderabbit.refresh_from_db()
    assert coderabbit.status == "dismissed"
    assert "No open suggestions" in client.get("/sources/").content.decode()


def test_unassigned_queue_page_assigns_in_bulk(page_as, security, owner, django_assert_max_num_queries):
    source_import(actor=security, kind="github-fine-grained-pats", raw=fixture("github-fine-grained-pats"))
    source_import(actor=security, kind="openai-admin-keys", raw=fixture("openai-admin-keys"))
    waiting = list(ServiceIdentity.objects.filter(owner__username="unassigned").values_list("pk", flat=True))
    client = page_as("security")
    with django_assert_max_num_queries(12) as few:
        body = client.get("/sources/unassigned/").content.decode()
    assert all(f'value="{pk}"' in body for pk in waiting)
    source_import(actor=security, kind="aws-credential-report", raw=fixture("aws-credential-report"))
    source_import(actor=security, kind="kubernetes-service-accounts", raw=fixture("kubernetes-service-accounts"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/sources/unassigned/")
    before = state()
    owned = ServiceIdentity.objects.exclude(owner__username="unassigned").first()
    bad_posts = (
        {"identities": waiting, "owner": "nobody"},
        {"identities": [], "owner": "owner"},
        {"identities": [*waiting, owned.pk], "owner": "owner"},
        {"identities": ["x"], "owner": "owner"},
    )
    for bad in bad_posts:
        assert client.post("/sources/unassigned/", bad).status_code == 400
    assert state() == before
    response = client.post("/sources/unassigned/", {"identities": waiting, "owner": "owner"})
    assert response.status_code == 302
    assert set(ServiceIdentity.objects.filter(pk__in=waiting).values_list("owner", flat=True)) == {owner.pk}


def test_identity_page_shows_where_it_came_from_in_constant_queries(page_as, security, django_assert_max_num_queries):
    source_import(actor=security, kind="github-fine-grained-pats", raw=fixture("github-fine-grained-pats"),
                  account="acme-org")  # fmt: skip
    from tests.factories import IdentityFactory

    by_hand = IdentityFactory(owner=security)
    discovered = ServiceIdentity.objects.get(external_id="pat:501")
    client = page_as("security")
    with django_assert_max_num_queries(40) as hand:
        body = client.get(f"/identities/{by_hand.pk}/").content.decode()
    assert "no discovery source lists it" in body
    with django_assert_max_num_queries(len(hand.captured_queries)):
        body = client.get(f"/identities/{discovered.pk}/").content.decode()
    assert "github-fine-grained-pats" in body and "acme-org" in body and "pat:501" in body
