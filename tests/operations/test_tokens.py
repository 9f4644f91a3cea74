"""API tokens over the API: everyone their own, security also gateway accounts'; the token shown once, never stored
or listed; issuing and revoking audited, the CLI's issuing too."""

import re

import pytest
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from approvals.models import GatewayToolLimit
from inventory.models import AuditEntry
from operations import tokens
from tests.factories import ToolFactory, UserFactory
from tests.secret_search import rows_containing

LIST = "/api/v1/tokens/"


def _revoke(token) -> str:
    return f"/api/v1/tokens/{tokens.public_id(token)}/revoke/"


@pytest.fixture
def owned(users):
    """One token each for the owner, the other owner, security and the gateway account."""
    return {
        role: AuthToken.objects.create(user=users[role])[0] for role in ("owner", "other_owner", "security", "gateway")
    }


@pytest.mark.parametrize(
    ("role", "status", "sees"),
    [
        ("anonymous", 401, None),
        ("gateway", 403, None),
        ("owner", 200, {"owner"}),
        ("other_owner", 200, {"other_owner"}),
        ("manager", 200, set()),
        ("security", 200, {"security", "gateway"}),
    ],
)
def test_who_lists_which_tokens(api_as, owned, role, status, sees):
    response = api_as(role).get(LIST)
    assert response.status_code == status
    if sees is not None:
        listed = {row["id"] for row in response.json()["results"]}
        assert listed == {tokens.public_id(owned[r]) for r in sees}
        assert all(
            set(row) == {"id", "user", "tools", "created", "expires", "last_used"} for row in response.json()["results"]
        )


def test_issuing_your_own_shows_it_once_and_it_works(api_as, owner):
    response = api_as("owner").post(LIST, {"days": 7}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["user"] == "owner" and body["tools"] is None
    assert response["Cache-Control"] == "no-store"
    text = body["token"]
    assert APIClient(headers={"Authorization": f"Token {text}"}).get("/api/v1/tools/").status_code == 200
    listed = api_as("owner").get(LIST).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]] and "token" not in listed[0]
    entry = AuditEntry.objects.get(action="token.issued")
    assert (entry.actor, entry.object_id, entry.after["via"]) == (owner, body["id"], "api")
    assert rows_containing(text) == [] and rows_containing(text[15:40]) == []


def test_security_issues_a_gateway_token_limited_to_tools(api_as, gateway):
    ToolFactory(slug="docs-bot")
    ToolFactory(slug="triage-bot")
    response = api_as("security").post(
        LIST, {"user": "gw", "tools": ["triage-bot", "docs-bot"], "days": 30}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["user"], response.json()["tools"]) == ("gw", ["docs-bot", "triage-bot"])
    limit = GatewayToolLimit.objects.get()
    assert limit.token.user == gateway
    assert AuditEntry.objects.get(action="token.issued").after["tools"] == ["docs-bot", "triage-bot"]


@pytest.mark.parametrize(
    ("role", "body", "field"),
    [
        ("owner", {"user": "gw"}, "user"),  # only security issues gateways' tokens
        ("security", {"user": "owner"}, "user"),  # and never another human's
        ("security", {"user": "nobody"}, "user"),
        ("owner", {"tools": ["docs-bot"]}, "tools"),  # tool limits are for gateway tokens
        ("security", {"user": "gw", "tools": ["no-such-tool"]}, "tools"),
        ("owner", {"days": 0}, "days"),
        ("owner", {"days": 366}, "days"),
        ("owner", {"days": "soon"}, "days"),
        ("owner", {"tools": "docs-bot"}, "tools"),
        ("manager", {"user": ["mgr"]}, "user"),
    ],
)
def test_bad_requests_are_400_and_issue_nothing(api_as, users, role, body, field):
    ToolFactory(slug="docs-bot")
    response = api_as(role).post(LIST, body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not AuthToken.objects.exists() and not AuditEntry.objects.filter(action="token.issued").exists()


@pytest.mark.parametrize(
    ("role", "target", "status"),
    [
        ("owner", "owner", 204),
        ("owner", "other_owner", 404),
        ("owner", "gateway", 404),
        ("manager", "owner", 404),
        ("security", "gateway", 204),
        ("security", "owner", 404),  # security manages gateways' tokens, not other humans'
        ("gateway", "gateway", 403),
        ("anonymous", "owner", 401),
    ],
)
def test_who_revokes_which(api_as, owned, role, target, status):
    token = owned[target]
    response = api_as(role).post(_revoke(token))
    assert response.status_code == status
    assert AuthToken.objects.filter(digest=token.digest).exists() == (status != 204)
    assert AuditEntry.objects.filter(action="token.revoked").count() == (status == 204)


def test_a_revoked_token_stops_working_at_once(api_as, owner):
    text = api_as("owner").post(LIST, {}, format="json").json()["token"]
    client = APIClient(headers={"Authorization": f"Token {text}"})
    [token] = AuthToken.objects.all()
    assert client.post(_revoke(token)).status_code == 204
    assert client.get("/api/v1/tools/").status_code == 401
    entry = AuditEntry.objects.get(action="token.revoked")
    assert entry.before["user"] == "owner" and entry.object_id == tokens.public_id(token)


@pytest.mark.parametrize("token_id", ["x" * 16, "0" * 15, "0" * 17, "ABCDEF0123456789", "../../tools"])
def test_malformed_ids_are_404(api_as, owned, token_id):
    assert api_as("owner").post(f"/api/v1/tokens/{token_id}/revoke/").status_code == 404


def test_the_list_costs_the_same_at_5_and_50_tokens(api_as, security, django_assert_max_num_queries):
    tool = ToolFactory()

    def add(n):
        for _ in range(n):
            gw = UserFactory(roles=["gateway"])
            token = AuthToken.objects.create(user=gw)[0]
            GatewayToolLimit.objects.create(token=token).tools.set([tool])

    client = api_as("security")
    add(5)
    with django_assert_max_num_queries(4) as few:
        assert len(client.get(LIST).json()["results"]) == 5
    add(45)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get(LIST).json()["results"]) == 50


def test_the_cli_issues_with_an_audit_entry(gateway, capsys):
    ToolFactory(slug="docs-bot")
    call_command("issue_token", "gw", "--days", "3", "--tool", "docs-bot")
    text = capsys.readouterr().out.strip()
    [token] = AuthToken.objects.all()
    entry = AuditEntry.objects.get(action="token.issued")
    assert (entry.actor, entry.actor_label, entry.object_id) == (None, "cli", tokens.public_id(token))
    assert entry.after == {"user": "gw", "expires": token.expiry.isoformat(), "tools": ["docs-bot"], "via": "cli"}
    assert rows_containing(text) == []


def test_the_schema_documents_the_answers_issuing_and_revoking_give(api_as, owned):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    refused = paths[LIST]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert refused == {"anyOf": [{"$ref": "#/components/schemas/FieldErrors"}, {"$ref": "#/components/schemas/Error"}]}
    not_json = api_as("owner").post(LIST, "{", content_type="application/json")
    assert not_json.status_code == 400 and set(not_json.json()) == {"detail"}  # the Error shape
    assert set(api_as("owner").post(LIST, {"days": 0}, format="json").json()) == {"days"}  # FieldErrors
    [param] = paths["/api/v1/tokens/{token_id}/revoke/"]["post"]["parameters"]
    assert all(re.fullmatch(param["schema"]["pattern"], tokens.public_id(token)) for token in owned.values())
    row = paths[LIST]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert row == {"$ref": "#/components/schemas/PaginatedTokenList"}
