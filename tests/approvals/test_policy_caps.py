"""The policy's numbers live in approvals/policy.py only: the request form, the services, the policy page and their
messages read them from there, so changing a cap there changes it everywhere."""

import ast
import re
from pathlib import Path

import pytest
from django.urls import reverse

from approvals import forms, policy, services
from approvals.models import PolicySettings
from inventory.choices import ScopeRisk
from nhi_portal.exceptions import PortalError

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
POLICY_NUMBERS = {*policy.MAX_DAYS_BY_RISK.values(), policy.MAX_DAYS_SENSITIVE, policy.PENDING_EXPIRY_DAYS,
                  policy.REMINDER_DAYS}  # fmt: skip
READERS = ["approvals/forms.py", "approvals/views.py", *sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "approvals/services").glob("*.py")
)]  # fmt: skip


def test_the_caps_in_words_name_every_cap():
    assert policy.duration_caps_text() == "90 days for read, 30 for write or sensitive data, 7 for admin"


def test_the_request_form_reads_the_caps():
    field = forms.AccessRequestForm.base_fields["duration_days"]
    assert field.max_value == policy.LONGEST_GRANT_DAYS == max(policy.MAX_DAYS_BY_RISK.values())
    assert field.initial == policy.DEFAULT_DURATION_DAYS
    assert field.help_text == f"Capped by policy: {policy.duration_caps_text()}."


def test_auto_approval_is_capped_by_the_policy_constant(monkeypatch, security):
    assert policy.MAX_DAYS_BY_RISK[ScopeRisk.READ] == policy.AUTO_APPROVE_MAX_DAYS_LIMIT
    monkeypatch.setattr(policy, "AUTO_APPROVE_MAX_DAYS_LIMIT", 45)
    with pytest.raises(PortalError, match="Auto-approval may cover 1 to 45 days"):
        services.policy_settings_update(actor=security, auto_approve_low_risk=True, auto_approve_max_days=46)
    services.policy_settings_update(actor=security, auto_approve_low_risk=True, auto_approve_max_days=45)
    assert PolicySettings.current().auto_approve_max_days == 45


def test_the_policy_page_shows_the_constants(monkeypatch, page_as):
    monkeypatch.setattr(policy, "AUTO_APPROVE_MAX_DAYS_LIMIT", 45)
    monkeypatch.setattr(policy, "PENDING_EXPIRY_DAYS", 21)
    body = page_as("security").get(reverse("approvals:policy")).content.decode()
    assert 'name="auto_approve_max_days" min="1" max="45"' in body
    assert "Pending requests expire after 21 days" in body


def test_the_policy_form_keeps_the_days_when_not_given(page_as, security):
    services.policy_settings_update(actor=security, auto_approve_low_risk=False, auto_approve_max_days=5)
    page_as("security").post(reverse("approvals:policy_update"), {"auto_approve_low_risk": "on"})
    current = PolicySettings.current()
    assert current.auto_approve_low_risk is True and current.auto_approve_max_days == 5
    response = page_as("security").post(
        reverse("approvals:policy_update"), {"auto_approve_max_days": "many"}, follow=True
    )
    assert f"1 to {policy.AUTO_APPROVE_MAX_DAYS_LIMIT} days" in response.content.decode()
    assert PolicySettings.current().auto_approve_low_risk is True  # refused: nothing changed


def _restates(value) -> bool:
    """A policy number as a number, a numeric string ("7"), or in words ("90 days")."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    if isinstance(value, int) or value.isdigit():
        return int(value) in POLICY_NUMBERS
    return re.search(rf"\b({'|'.join(map(str, POLICY_NUMBERS))}) days?\b", value) is not None


@pytest.mark.parametrize("path", READERS)
def test_no_reader_restates_a_policy_number(path):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    assert [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and _restates(n.value)] == []


def test_no_approvals_template_restates_a_policy_number():
    days = "|".join(map(str, POLICY_NUMBERS))
    restated = re.compile(rf'\b({days}) days?\b|(max|min|value)="({days})"')
    offenders = [
        (path.name, match.group(0))
        for path in (ROOT / "templates/approvals").rglob("*.html")
        for match in restated.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
