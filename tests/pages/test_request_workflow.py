"""Workflow context on the request pages: the form offers the scopes of the identity's provider only, the tool page
prefills it, and Renew appears only inside the renewal window (outside it, the page says from when)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals import services as approvals
from approvals.models import AccessRequest
from approvals.policy import REMINDER_DAYS
from inventory.models import ScopeGrant
from tests.factories import BindingFactory, IdentityFactory, ScopeFactory, ToolFactory

pytestmark = pytest.mark.django_db

NEW = reverse("approvals:request_create")


@pytest.fixture
def setup(users):
    tool = ToolFactory(owner=users["owner"], name="Support Bot", environment="dev")
    identity = IdentityFactory(owner=users["owner"], name="svc-zendesk", provider="zendesk", environment="dev")
    BindingFactory(tool=tool, identity=identity)
    zendesk = ScopeFactory(name="zendesk:tickets:read", provider="zendesk", risk="read")
    github = ScopeFactory(name="github:contents:read", provider="github", risk="read")
    return {"tool": tool, "identity": identity, "zendesk": zendesk, "github": github}


def test_form_offers_only_the_scopes_of_the_identitys_provider(setup, page_as):
    client = page_as("owner")
    body = client.get(NEW, {"tool": setup["tool"].pk}).content.decode()
    assert "Choose the identity first" in body and 'name="scopes"' not in body
    body = client.get(NEW, {"tool": setup["tool"].pk, "identity": setup["identity"].pk}).content.decode()
    assert f'value="{setup["zendesk"].pk}"' in body and "github:contents:read" not in body
    assert "Scopes at <strong>zendesk</strong>" in body


def test_a_scope_of_another_provider_is_refused_and_files_nothing(setup, page_as):
    data = {"tool": setup["tool"].pk, "identity": setup["identity"].pk, "scopes": [setup["github"].pk],
            "justification": "The bot reads the repository to answer questions.", "duration_days": 7}  # fmt: skip
    response = page_as("owner").post(NEW, data)
    assert response.status_code == 400
    # The service's rule, in its words (approvals.services.request_file): the form no longer decides it.
    assert "svc-zendesk is a zendesk identity; it can only be granted zendesk scopes, not github:contents:read." in (
        response.content.decode()
    )
    assert not AccessRequest.objects.exists()


def test_prefilled_scopes_come_checked(setup, page_as):
    query = {"tool": setup["tool"].pk, "identity": setup["identity"].pk, "scope": setup["zendesk"].pk}
    body = page_as("owner").get(NEW, query).content.decode()
    assert f'value="{setup["zendesk"].pk}" id="scope-{setup["zendesk"].pk}" checked' in body


@pytest.mark.parametrize(("role", "shown"), [("owner", True), ("other_owner", False), ("security", True),
                                             ("manager", False)])  # fmt: skip
def test_tool_page_offers_request_scopes_prefilled(setup, page_as, role, shown):
    response = page_as(role).get(setup["tool"].get_absolute_url())
    link = f"{NEW}?tool={setup['tool'].pk}&amp;identity={setup['identity'].pk}"
    if role == "other_owner":
        assert response.status_code == 404
        return
    assert (link in response.content.decode()) is shown


def approved(setup, users, *, days: int) -> AccessRequest:
    filed = approvals.request_file(
        requester=users["owner"], tool=setup["tool"], identity=setup["identity"],
        items=[approvals.ScopeItem(setup["zendesk"], "")], justification="Reads tickets to draft replies.",
        duration_days=days,
    )  # fmt: skip
    return approvals.request_decide(actor=users["security"], request_id=filed.pk, kind="approve")


def test_renew_only_inside_the_renewal_window(setup, page_as, users):
    request = approved(setup, users, days=30)
    body = page_as("owner").get(request.get_absolute_url()).content.decode()
    renew = reverse("approvals:request_renew", args=[request.pk])
    grant = ScopeGrant.objects.get(issue__request=request)
    opens = timezone.localtime(grant.expires_at - timedelta(days=REMINDER_DAYS))
    assert renew not in body
    assert f"Renew opens on {opens.day} {opens:%b %Y}" in body
    grants = page_as("owner").get("/grants/").content.decode()
    assert renew not in grants
    ScopeGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() + timedelta(days=REMINDER_DAYS - 2))
    assert renew in page_as("owner").get(request.get_absolute_url()).content.decode()
    assert renew in page_as("owner").get("/grants/").content.decode()
