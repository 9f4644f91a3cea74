"""The API tokens page: who opens it, issuing (shown once) and revoking through it, and its constant query count."""

import re

import pytest
from knox.models import AuthToken

from approvals.models import GatewayToolLimit
from inventory.models import AuditEntry
from operations import tokens
from tests.factories import ToolFactory, UserFactory


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("gateway", 403), ("owner", 200), ("manager", 200), ("security", 200)],
)
def test_who_opens_the_page(page_as, role, status):
    response = page_as(role).get("/tokens/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/accounts/login/")


def test_owner_issues_their_own_and_sees_it_once(page_as, owner):
    client = page_as("owner")
    response = client.post("/tokens/", {"user": "owner", "days": "5", "tools": ""})
    assert response.status_code == 200
    text = re.search(r'<code id="issued-token">([^<]+)</code>', response.content.decode()).group(1)
    [token] = AuthToken.objects.filter(user=owner)
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    again = client.get("/tokens/").content.decode()
    assert text not in again and tokens.public_id(token) in again
    assert AuditEntry.objects.get(action="token.issued").after["via"] == "page"


def test_the_owner_cannot_pick_a_gateway_and_nothing_is_issued(page_as, gateway):
    response = page_as("owner").post("/tokens/", {"user": "gw", "days": "5"})
    assert response.status_code == 400
    assert not AuthToken.objects.exists()


def test_security_issues_a_limited_gateway_token_and_revokes_it(page_as, gateway):
    ToolFactory(slug="docs-bot")
    client = page_as("security")
    assert 'value="gw"' in client.get("/tokens/").content.decode()
    response = client.post("/tokens/", {"user": "gw", "days": "30", "tools": "docs-bot"})
    assert response.status_code == 200 and "issued-token" in response.content.decode()
    [token] = AuthToken.objects.filter(user=gateway)
    assert [t.slug for t in token.tool_limit.tools.all()] == ["docs-bot"]
    unknown = client.post("/tokens/", {"user": "gw", "days": "30", "tools": "nope"})
    assert unknown.status_code == 400 and "Unknown tool(s): nope" in unknown.content.decode()
    revoked = client.post(f"/tokens/{tokens.public_id(token)}/revoke/")
    assert revoked.status_code == 302
    assert not AuthToken.objects.filter(user=gateway).exists()


def test_revoking_someone_elses_is_404(page_as, other_owner):
    token = AuthToken.objects.create(user=other_owner)[0]
    assert page_as("owner").post(f"/tokens/{tokens.public_id(token)}/revoke/").status_code == 404
    assert page_as("owner").get(f"/tokens/{tokens.public_id(token)}/revoke/").status_code == 405
    assert AuthToken.objects.filter(user=other_owner).exists()


def test_the_page_costs_the_same_at_5_and_50_tokens(page_as, security, django_assert_max_num_queries):
    tool = ToolFactory()

    def add(n):
        for _ in range(n):
            token = AuthToken.objects.create(user=UserFactory(roles=["gateway"]))[0]
            GatewayToolLimit.objects.create(token=token).tools.set([tool])

    client = page_as("security")
    add(5)
    with django_assert_max_num_queries(30) as few:
        assert client.get("/tokens/").status_code == 200
    add(45)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/tokens/").status_code == 200
