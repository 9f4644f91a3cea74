"""Browser journeys through the approvals pages: an owner files a scope request, security decides in the review queue
or on the request page, the owner finds the grant and revokes it. Two-person rule for write scopes.
"""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.choices import DecisionKind, RequestStatus
from approvals.models import AccessRequest, Decision
from inventory import choices
from inventory.models import AuditEntry, Scope, ScopeGrant
from tests.e2e.helpers import expect, swap_results
from tests.factories import BindingFactory, IdentityFactory, ScopeFactory, ToolFactory

pytestmark = pytest.mark.browser

TOOL = "Helpdesk Assistant (dev)"  # as the tool <select> labels it
IDENTITY = "svc-helpdesk (Service account, dev)"  # as the identity <select> labels it
OTHER_TOOL = "Ledger Bot (dev)"
OTHER_IDENTITY = "svc-ledger (Service account, dev)"
PLACEHOLDER = "Choose the identity it acts through"
JUSTIFICATION = "The assistant searches the support knowledge base to draft answers for tier-1 agents."
RESOURCE = "space:support-kb"
QUEUE_COMMENT = "Read-only and limited to the support space: fine."


@dataclass
class World:
    owner: object
    sec: object
    sec2: object
    tool: object
    identity: object
    read: Scope
    write: Scope


@pytest.fixture
def world(make_user) -> World:
    owner = make_user("owner")
    sec, sec2 = make_user("sec", roles=("security",)), make_user("sec2", roles=("security",))
    rival = make_user("rival")
    assert {u.email for u in (owner, sec, sec2)} == {"owner@example.test", "sec@example.test", "sec2@example.test"}

    dev = choices.Environment.DEV
    tool = ToolFactory(name="Helpdesk Assistant", slug="helpdesk-assistant", owner=owner, environment=dev)
    # A Zendesk identity: the request form offers the scopes of the identity's provider only.
    identity = IdentityFactory(name="svc-helpdesk", owner=owner, environment=dev, provider="zendesk")
    BindingFactory(tool=tool, identity=identity)
    # Another tool of the owner's and a rival's tool, each with its own identity: neither may show up for TOOL.
    other = ToolFactory(name="Ledger Bot", slug="ledger-bot", owner=owner, environment=dev)
    BindingFactory(tool=other, identity=IdentityFactory(name="svc-ledger", owner=owner, environment=dev))
    rival_tool = ToolFactory(name="Rival Relay", slug="rival-relay", owner=rival, environment=dev)
    BindingFactory(tool=rival_tool, identity=IdentityFactory(name="svc-rival", owner=rival, environment=dev))

    read = ScopeFactory(name="kb:articles:read", provider="zendesk", risk=choices.ScopeRisk.READ)
    write = ScopeFactory(name="tickets:write", provider="zendesk", risk=choices.ScopeRisk.WRITE)
    ScopeFactory(name="org:admin", provider="zendesk", risk=choices.ScopeRisk.ADMIN)
    return World(owner, sec, sec2, tool, identity, read, write)


# -- page helpers ---------------------------------------------------------------------------------------------------


def sign_out(page):
    with page.expect_navigation():
        page.locator(".who").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def pick_tool(page, label: str):
    """Choose a tool and wait for htmx to refill the identity <select> with that tool's identities."""
    with page.expect_response(re.compile(r"/requests/new/identities/\?tool=\d+$")) as info:
        page.get_by_label("AI tool *").select_option(label=label)
    response = info.value
    assert response.ok and response.request.headers.get("hx-request") == "true"
    return response


def identity_options(page):
    return page.get_by_label("Identity *").locator("option")


def field(page, label: str):
    """The .field wrapper around a labelled control, where its errors are shown."""
    return page.locator(".field", has=page.get_by_label(label))


def file_request(page, *, scope: str, justification: str, days: int, resource: str = ""):
    """Fill the request form for TOOL / IDENTITY and submit it (a full page load, valid or not)."""
    pick_tool(page, TOOL)
    expect(identity_options(page)).to_have_text([PLACEHOLDER, IDENTITY])
    # The scopes offered follow the identity (its provider's): wait for them to be swapped in before ticking one.
    swap_results(page, lambda: page.get_by_label("Identity *").select_option(label=IDENTITY), target="#scope-fieldset")
    expect(page.locator("#scope-fieldset")).to_contain_text("Scopes at zendesk")
    page.get_by_label(scope, exact=True).check()
    if resource:
        page.get_by_label(f"Resource for {scope}").fill(resource)
    page.get_by_label("Justification *").fill(justification)
    page.get_by_label("Duration (days) *").fill(str(days))
    with page.expect_navigation():
        page.get_by_role("button", name="File request").click()


def chip(page):
    """The request status chip next to the heading on the request page."""
    return page.get_by_role("heading", level=1).locator(".chip")


def timeline(page):
    return page.locator("ol.timeline > li")


def grants_issued(page):
    return page.locator("h2:has-text('Grants issued') + ul > li")


def ymd(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d")


# -- journeys -------------------------------------------------------------------------------------------------------


def test_read_scope_request_is_filed_approved_in_the_queue_and_granted(page, world, sign_in, mailoutbox, celery_eager):
    # -- The owner files a request: the identity select follows the tool (htmx).
    page.goto("/requests/new/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/requests/new/$"))
    sign_in(page, "owner")
    expect(page).to_have_url(re.compile(r"/requests/new/$"))
    expect(page.get_by_role("heading", name="Request scopes")).to_be_visible()
    expect(page.get_by_label("AI tool *").locator("option")).to_have_text(
        ["Choose one of your tools", TOOL, OTHER_TOOL]  # not the rival's
    )
    expect(identity_options(page)).to_have_text([PLACEHOLDER])  # nothing until a tool is chosen

    pick_tool(page, OTHER_TOOL)
    expect(identity_options(page)).to_have_text([PLACEHOLDER, OTHER_IDENTITY])

    # First an invalid request: a one-word justification. Shown on the field, nothing filed, the rest kept.
    file_request(page, scope="kb:articles:read", resource=RESOURCE, justification="Needed.", days=14)
    expect(page).to_have_url(re.compile(r"/requests/new/$"))
    expect(field(page, "Justification *").locator(".error")).to_have_text(
        "Explain in at least a sentence why the tool needs these scopes."
    )
    expect(page.locator(".field.invalid")).to_have_count(1)
    expect(page.locator(".messages")).to_have_count(0)
    assert not AccessRequest.objects.exists()
    assert not AuditEntry.objects.filter(action="request.filed").exists()
    assert mailoutbox == []
    expect(page.get_by_label("AI tool *")).to_have_value(str(world.tool.pk))
    expect(identity_options(page)).to_have_text([PLACEHOLDER, IDENTITY])
    expect(page.get_by_label("Identity *")).to_have_value(str(world.identity.pk))
    expect(page.get_by_label("kb:articles:read", exact=True)).to_be_checked()
    expect(page.get_by_label("Resource for kb:articles:read")).to_have_value(RESOURCE)
    expect(page.get_by_label("Duration (days) *")).to_have_value("14")

    # Then properly (the form is filled again from scratch: the htmx select must work after a server render too).
    page.get_by_label("kb:articles:read", exact=True).uncheck()
    page.get_by_label("Resource for kb:articles:read").fill("")
    file_request(page, scope="kb:articles:read", resource=RESOURCE, justification=JUSTIFICATION, days=14)
    filed = AccessRequest.objects.get()
    expect(page).to_have_url(re.compile(rf"/requests/{filed.pk}/$"))
    expect(page.locator(".messages")).to_have_text("Request filed for Helpdesk Assistant · svc-helpdesk.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Helpdesk Assistant · svc-helpdesk")
    expect(chip(page)).to_have_text("Pending")
    expect(chip(page)).to_have_class(re.compile(r"\breq-pending\b"))
    expect(page.locator("#approval-progress")).to_have_text("needs 1 approval, has 0")
    expect(
        page.get_by_text("read_non_sensitive: Read scopes on non-sensitive data need one security approver.")
    ).to_be_visible()
    expect(page.get_by_text(f"kb:articles:read read on {RESOURCE}")).to_be_visible()
    expect(page.get_by_text(JUSTIFICATION)).to_be_visible()
    # The requester never decides on their own request: no decision form, and no review queue for them.
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Deny")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel request")).to_be_visible()
    expect(page.get_by_role("link", name="Review queue")).to_have_count(0)  # not in the menu, not on home either
    assert page.request.get("/review/").status == 403

    assert (filed.requester, filed.tool, filed.identity) == (world.owner, world.tool, world.identity)
    assert (filed.status, filed.required_approvals, filed.duration_days) == (RequestStatus.PENDING, 1, 14)
    assert filed.justification == JUSTIFICATION
    assert list(filed.items.values_list("scope__name", "resource_constraint")) == [("kb:articles:read", RESOURCE)]
    (filed_mail,) = mailoutbox
    assert set(filed_mail.to) == {"sec@example.test", "sec2@example.test"}
    assert f"#{filed.pk}" in filed_mail.subject

    # -- Security approves from the review queue; the row is replaced in place.
    sign_out(page)
    sign_in(page, "sec")
    expect(page.locator(".who")).to_contain_text("sec · security")
    # By the menu: the home page has its own "Review queue" link, on the list of pending reviews.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Review queue").click()
    expect(page).to_have_url(re.compile(r"/review/$"))
    row = page.locator(f"#request-{filed.pk}")
    expect(page.locator("tbody > tr")).to_have_count(1)
    expect(row).to_contain_text("Helpdesk Assistant")
    expect(row).to_contain_text("svc-helpdesk")
    expect(row).to_contain_text("kb:articles:read")
    expect(row).to_contain_text("0 / 1")
    expect(row).to_contain_text("owner")  # the requester
    expect(row).to_contain_text("14 days")  # the duration asked for
    expect(row).to_contain_text("Read scopes on non-sensitive data need one security approver.")  # the deciding rule
    expect(row).to_contain_text("No open critical finding")
    row.get_by_label("Comment on Helpdesk Assistant for svc-helpdesk").fill(QUEUE_COMMENT)
    sent = swap_results(page, lambda: row.get_by_role("button", name="Approve").click(), target=f"#request-{filed.pk}")
    assert sent.method == "POST" and sent.url.endswith(f"/requests/{filed.pk}/approve/")
    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(row.locator(".chip.req-approved")).to_have_text("Approved")
    expect(row).to_contain_text("1 / 1")
    expect(row.get_by_role("button")).to_have_count(0)

    filed.refresh_from_db()
    assert filed.status == RequestStatus.APPROVED and filed.decided_at is not None
    assert list(filed.decisions.values_list("approver__username", "kind", "comment")) == [
        ("sec", DecisionKind.APPROVE, QUEUE_COMMENT)
    ]
    grant = ScopeGrant.objects.get()
    assert (grant.identity, grant.tool, grant.scope, grant.resource_constraint, grant.status) == (
        world.identity, world.tool, world.read, RESOURCE, choices.GrantStatus.ACTIVE
    )  # fmt: skip
    assert abs(grant.expires_at - (grant.granted_at + timedelta(days=14))) < timedelta(seconds=1)
    assert grant.issue.request == filed
    decided_mail = mailoutbox[-1]
    assert decided_mail.to == ["owner@example.test"] and decided_mail.subject.endswith(": approved")

    # Back in a fresh queue the request is gone.
    page.reload()
    expect(page.locator(f"#request-{filed.pk}")).to_have_count(0)
    expect(page.get_by_text("Nothing waiting.")).to_be_visible()

    # -- The owner finds the grant and follows it back to the request.
    sign_out(page)
    sign_in(page, "owner")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Grants").click()
    expect(page).to_have_url(re.compile(r"/grants/$"))
    grant_row = page.locator(f"#grant-{grant.pk}")
    expect(page.locator("#results tbody > tr")).to_have_count(1)
    expect(grant_row.locator("td")).to_have_text(
        ["svc-helpdesk", "Helpdesk Assistant", re.compile(r"^kb:articles:read\s+read$"), RESOURCE,
         ymd(grant.expires_at), "never", "approved request", "Active", re.compile(r"Revoke")],
    )  # fmt: skip
    expect(grant_row.get_by_role("button", name="Revoke")).to_be_visible()

    grant_row.get_by_role("link", name="approved request").click()
    expect(page).to_have_url(re.compile(rf"/requests/{filed.pk}/$"))
    expect(chip(page)).to_have_text("Approved")
    expect(chip(page)).to_have_class(re.compile(r"\breq-approved\b"))
    expect(page.locator("#approval-progress")).to_have_text("needs 1 approval, has 1")
    expect(timeline(page)).to_have_count(2)
    expect(timeline(page).nth(0)).to_contain_text("Filed by owner")
    expect(timeline(page).nth(1)).to_contain_text("Approved by sec")
    expect(timeline(page).nth(1).locator(".muted")).to_have_text(f"“{QUEUE_COMMENT}”")
    expect(grants_issued(page)).to_have_text([f"kb:articles:read · Active · expires {ymd(grant.expires_at)}"])
    expect(page.get_by_role("button", name="Cancel request")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)


WRITE_JUSTIFICATION = "The assistant closes solved tickets and tags them so the weekly report stays accurate."
SECOND_COMMENT = "Second pair of eyes: write is limited to the support group."
REVOKE_REASON = "Pilot ended; the assistant no longer closes tickets."


def test_write_scope_needs_two_approvers_then_the_owner_revokes_the_grant(page, world, sign_in):
    # -- The owner files a write-scope request: the policy asks for two approvers.
    page.goto("/accounts/login/")
    sign_in(page, "owner")
    page.goto("/requests/new/")
    file_request(page, scope="tickets:write", resource="group:support", justification=WRITE_JUSTIFICATION, days=14)
    filed = AccessRequest.objects.get()
    expect(page).to_have_url(re.compile(rf"/requests/{filed.pk}/$"))
    expect(chip(page)).to_have_text("Pending")
    expect(page.locator("#approval-progress")).to_have_text("needs 2 approvals, has 0")
    expect(page.get_by_text("write_scope: A write scope needs two distinct security approvers.")).to_be_visible()
    assert (filed.status, filed.required_approvals, filed.policy_rules) == (RequestStatus.PENDING, 2, ["write_scope"])

    # -- The first approver, in the queue: recorded, still waiting for a second.
    sign_out(page)
    sign_in(page, "sec")
    page.goto("/review/")
    row = page.locator(f"#request-{filed.pk}")
    expect(row).to_contain_text("0 / 2")
    expect(row).to_contain_text("tickets:write")
    swap_results(page, lambda: row.get_by_role("button", name="Approve").click(), target=f"#request-{filed.pk}")
    expect(row.locator("td").last).to_have_text("Your approval is recorded; waiting for a second approver.")
    expect(row).to_contain_text("1 / 2")
    expect(row.get_by_role("button")).to_have_count(0)
    filed.refresh_from_db()
    assert filed.status == RequestStatus.PENDING and filed.decided_at is None
    assert list(filed.decisions.values_list("approver__username", "kind", "comment")) == [("sec", "approve", "")]
    assert not ScopeGrant.objects.exists()
    assert AuditEntry.objects.filter(action="request.approval_recorded", actor=world.sec).count() == 1

    # Reloaded, the queue still lists the request, but sec cannot decide twice.
    page.reload()
    expect(row.locator("td").last).to_have_text("You decided already")
    expect(row.get_by_role("button")).to_have_count(0)
    page.goto(f"/requests/{filed.pk}/")
    expect(page.locator("#approval-progress")).to_have_text("needs 2 approvals, has 1")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    # -- The second approver decides from the request page.
    sign_out(page)
    sign_in(page, "sec2")
    page.goto(f"/requests/{filed.pk}/")
    expect(chip(page)).to_have_text("Pending")
    expect(page.locator("#approval-progress")).to_have_text("needs 2 approvals, has 1")
    expect(timeline(page).nth(1)).to_contain_text("Approved by sec")
    decision = page.locator("section", has=page.get_by_role("heading", name="Your decision"))
    decision.get_by_placeholder("Comment").fill(SECOND_COMMENT)
    with page.expect_navigation():
        decision.get_by_role("button", name="Approve").click()
    expect(page).to_have_url(re.compile(rf"/requests/{filed.pk}/$"))
    expect(page.locator(".messages")).to_have_text("Approval recorded.")
    expect(chip(page)).to_have_text("Approved")
    expect(page.locator("#approval-progress")).to_have_text("needs 2 approvals, has 2")
    expect(page.get_by_role("heading", name="Your decision")).to_have_count(0)
    expect(timeline(page)).to_have_count(3)
    expect(timeline(page).nth(1)).to_contain_text("Approved by sec ·")
    expect(timeline(page).nth(2)).to_contain_text("Approved by sec2")
    expect(timeline(page).nth(2).locator(".muted")).to_have_text(f"“{SECOND_COMMENT}”")
    grant = ScopeGrant.objects.get()
    expect(grants_issued(page)).to_have_text([f"tickets:write · Active · expires {ymd(grant.expires_at)}"])
    filed.refresh_from_db()
    assert filed.status == RequestStatus.APPROVED
    assert list(Decision.objects.filter(request=filed).values_list("approver__username", flat=True)) == ["sec", "sec2"]
    assert (grant.scope, grant.resource_constraint, grant.status) == (world.write, "group:support", "active")

    # -- The owner revokes the grant in place, with a reason.
    sign_out(page)
    sign_in(page, "owner")
    page.goto("/grants/")
    grant_row = page.locator(f"#grant-{grant.pk}")
    expect(grant_row.locator(".chip.status-active")).to_have_text("Active")
    grant_row.get_by_label("Reason for revoking tickets:write from svc-helpdesk").fill(REVOKE_REASON)
    sent = swap_results(
        page, lambda: grant_row.get_by_role("button", name="Revoke").click(), target=f"#grant-{grant.pk}"
    )
    assert sent.method == "POST" and sent.url.endswith(f"/grants/{grant.pk}/revoke/")
    expect(page).to_have_url(re.compile(r"/grants/$"))
    expect(grant_row.locator(".chip.status-revoked")).to_have_text("Revoked")
    expect(grant_row).to_contain_text(REVOKE_REASON)
    expect(grant_row.get_by_role("button")).to_have_count(0)  # neither Revoke nor Renew on a revoked grant
    expect(grant_row.locator(".error")).to_have_count(0)

    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == (choices.GrantStatus.REVOKED, REVOKE_REASON)
    assert grant.revoked_at is not None
    assert list(
        AuditEntry.objects.filter(action="grant.revoked").values_list("actor__username", "object_id", "comment")
    ) == [("owner", str(grant.pk), REVOKE_REASON)]

    # A fresh load agrees, and the request page lists the grant as revoked.
    page.reload()
    expect(grant_row.locator(".chip.status-revoked")).to_have_text("Revoked")
    page.goto(f"/requests/{filed.pk}/")
    expect(grants_issued(page)).to_have_text([f"tickets:write · Revoked · expires {ymd(grant.expires_at)}"])
