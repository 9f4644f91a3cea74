"""The approval policy, rule by rule."""

import pytest

from approvals import policy
from approvals.choices import RequestStatus
from approvals.models import PolicySettings
from inventory.models import AuditEntry, ScopeGrant
from tests.factories import ToolFactory

pytestmark = pytest.mark.django_db


def _eval(tool, scopes, days=14, **settings):
    return policy.evaluate(tool=tool, scopes=scopes, duration_days=days, settings=PolicySettings(**settings))


def test_read_non_sensitive_needs_one_approver(tool, scopes):
    outcome = _eval(tool, [scopes["read"]])
    assert outcome.required_approvals == 1
    assert outcome.matched_rules == ("read_non_sensitive",)
    assert outcome.max_duration_days == 90


@pytest.mark.parametrize(
    ("key", "rule", "cap"),
    [("write", "write_scope", 30), ("admin", "admin_scope", 7), ("read_sensitive", "sensitive_data", 30)],
)
def test_riskier_scopes_need_two_approvers(tool, scopes, key, rule, cap):
    outcome = _eval(tool, [scopes["read"], scopes[key]])
    assert outcome.required_approvals == 2
    assert rule in outcome.matched_rules
    assert outcome.max_duration_days == cap


def test_prod_tool_with_restricted_data_needs_two(owner, scopes):
    tool = ToolFactory(owner=owner, environment="prod", data_classification="restricted")
    outcome = _eval(tool, [scopes["read"]])
    assert outcome.required_approvals == 2
    assert "prod_restricted_tool" in outcome.matched_rules


@pytest.mark.parametrize(("environment", "classification"), [("prod", "confidential"), ("staging", "restricted")])
def test_restricted_rule_needs_both_prod_and_restricted(owner, scopes, environment, classification):
    tool = ToolFactory(owner=owner, environment=environment, data_classification=classification)
    assert _eval(tool, [scopes["read"]]).required_approvals == 1


def test_strictest_cap_wins(tool, scopes):
    assert _eval(tool, [scopes["read"], scopes["write"], scopes["admin"]]).max_duration_days == 7


def test_auto_approve_is_off_by_default(tool, scopes):
    assert PolicySettings.current().auto_approve_low_risk is False
    assert _eval(tool, [scopes["read"]], days=3).auto_approve is False


def test_auto_approve_lowest_risk_when_switched_on(tool, scopes):
    assert _eval(tool, [scopes["read"]], days=7, auto_approve_low_risk=True).auto_approve is True


@pytest.mark.parametrize(
    ("keys", "days", "environment"),
    [
        (["read"], 8, "dev"),  # too long
        (["read_sensitive"], 3, "dev"),  # sensitive data
        (["write"], 3, "dev"),  # write
        (["read"], 3, "prod"),  # production tool
    ],
)
def test_auto_approve_never_beyond_lowest_risk(owner, scopes, keys, days, environment):
    tool = ToolFactory(owner=owner, environment=environment)
    outcome = _eval(tool, [scopes[k] for k in keys], days=days, auto_approve_low_risk=True, auto_approve_max_days=7)
    assert outcome.auto_approve is False


def test_auto_approval_is_recorded_as_the_policy(file_request, auto_approve_on, identity):
    request = file_request("read", duration_days=5)
    assert request.status == RequestStatus.APPROVED
    decision = request.decisions.get()
    assert decision.approver is None and decision.policy_rule == policy.AUTO_APPROVE_RULE
    assert ScopeGrant.objects.filter(identity=identity, status="active").count() == 1
    entry = AuditEntry.objects.get(action="request.approved", object_id=str(request.pk))
    assert entry.actor is None and entry.actor_label == "policy:auto_low_risk"


def test_every_rule_is_described():
    for rule in policy.RULES:
        assert policy.describe(rule.key) == rule.description
    assert "7 days" in policy.describe(policy.AUTO_APPROVE_RULE)


def test_security_switches_auto_approval_on_the_policy_page(page_as):
    from django.urls import reverse

    url = reverse("approvals:policy_update")
    assert page_as("owner").post(url, {"auto_approve_low_risk": "on"}).status_code == 403
    assert page_as("manager").post(url, {"auto_approve_low_risk": "on"}).status_code == 403
    assert PolicySettings.current().auto_approve_low_risk is False
    page_as("security").post(url, {"auto_approve_low_risk": "on", "auto_approve_max_days": "5"})
    current = PolicySettings.current()
    assert current.auto_approve_low_risk is True and current.auto_approve_max_days == 5
    entry = AuditEntry.objects.get(action="policy.updated")
    assert entry.before["auto_approve_low_risk"] is False and entry.after["auto_approve_low_risk"] is True


def test_governed_objects_and_grants_are_read_only_in_the_admin(admin_client, tool):
    """Tools are edited through the pages and API, whose services audit, redact secrets and check permissions; the
    admin would bypass them (issue 11), so it only reads them. tests/inventory/test_admin_governance.py covers the
    admins that stay editable and are audited."""
    from django.urls import reverse

    from tests.factories import GrantFactory

    change = reverse("admin:inventory_aitool_change", args=[tool.pk])
    data = {"name": "Renamed in admin", "slug": tool.slug, "kind": tool.kind, "owner": tool.owner_id}
    assert admin_client.post(change, data).status_code == 403
    tool.refresh_from_db()
    assert tool.name != "Renamed in admin" and not AuditEntry.objects.exists()
    grant = GrantFactory()
    assert admin_client.get(reverse("admin:inventory_scopegrant_add")).status_code == 403
    assert admin_client.post(reverse("admin:inventory_scopegrant_change", args=[grant.pk]), {}).status_code == 403
