"""Attestations: security states that a tool meets a control no detector assesses, until a date. One service does it,
in one transaction with its audit entry; the page only calls it."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from inventory.models import Attestation, AuditEntry, Control
from inventory.posture import services
from inventory.posture.services import attestation_create
from nhi_portal.exceptions import PortalError
from tests.factories import ToolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tool(owner):
    return ToolFactory(owner=owner, slug="attested")


@pytest.fixture
def unassessed():
    return Control.objects.get(framework__key="OWASP-NHI-2025", control_id="NHI6")  # no detector evidences it


@pytest.fixture
def assessed():
    return Control.objects.get(framework__key="OWASP-NHI-2025", control_id="NHI2")


def _in_days(days: int):
    return timezone.localdate() + timedelta(days=days)


def test_security_attests_with_its_audit_entry(security, tool, unassessed):
    attestation = attestation_create(
        actor=security, tool=tool, control=unassessed, expires_at=_in_days(30), note="  Reviewed the cloud config  "
    )
    assert (attestation.attested_by, attestation.note) == (security, "Reviewed the cloud config")
    # A date is the start of that day, local time.
    assert attestation.expires_at == timezone.make_aware(datetime.combine(_in_days(30), datetime.min.time()))
    entry = AuditEntry.objects.get(action="control.attested")
    assert (entry.actor, entry.object_id, entry.comment) == (security, str(attestation.pk), "Reviewed the cloud config")
    assert entry.after["control"] == unassessed.ref and entry.after["tool"] == tool.pk


@pytest.mark.parametrize("role", ["owner", "other_owner", "manager", "gateway"])
def test_only_security_attests(users, role, tool, unassessed):
    with pytest.raises(PermissionDenied):
        attestation_create(actor=users[role], tool=tool, control=unassessed, expires_at=_in_days(30), note="checked")
    assert not Attestation.objects.exists() and not AuditEntry.objects.filter(action="control.attested").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"control": "assessed"}, "control"),  # a detector decides it: its findings, not a statement
        ({"expires_at": 0}, "expires_at"),  # today is not the future
        ({"expires_at": -1}, "expires_at"),
        ({"note": "   "}, "note"),
    ],
)
def test_refusals_write_nothing(security, tool, unassessed, assessed, change, field):
    values = {"control": unassessed, "expires_at": _in_days(30), "note": "checked"}
    if "control" in change:
        values["control"] = assessed
    if "expires_at" in change:
        values["expires_at"] = _in_days(change["expires_at"])
    if "note" in change:
        values["note"] = change["note"]
    with pytest.raises(PortalError) as refused:
        attestation_create(actor=security, tool=tool, **values)
    assert refused.value.field == field
    assert not Attestation.objects.exists() and not AuditEntry.objects.filter(action="control.attested").exists()


def test_attestation_and_its_entry_commit_together(monkeypatch, security, tool, unassessed):
    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_record", broken)
    with pytest.raises(RuntimeError):
        attestation_create(actor=security, tool=tool, control=unassessed, expires_at=_in_days(30), note="checked")
    assert not Attestation.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("owner", 403), ("other_owner", 403), ("security", 302), ("manager", 403), ("gateway", 403)],
)
def test_attest_page_calls_the_service(page_as, role, status, tool, unassessed):
    url = reverse("inventory:attest", args=[tool.pk])
    body = {"control": unassessed.pk, "note": "Reviewed the cloud config", "expires_at": _in_days(30).isoformat()}
    response = page_as(role).post(url, body)
    assert response.status_code == status
    attested = Attestation.objects.filter(tool=tool, control=unassessed)
    assert attested.count() == (1 if role == "security" else 0)
    if role == "security":
        assert response["Location"] == f"{tool.get_absolute_url()}posture/?framework=OWASP-NHI-2025"
        assert AuditEntry.objects.filter(action="control.attested", object_id=str(attested.get().pk)).exists()


def test_attest_page_shows_the_services_refusal(page_as, tool, assessed, unassessed):
    url = reverse("inventory:attest", args=[tool.pk])
    body = {"control": assessed.pk, "note": "checked", "expires_at": _in_days(30).isoformat()}
    response = page_as("security").post(url, body, follow=True)
    assert "Detectors assess this control" in response.content.decode()
    assert not Attestation.objects.exists()
    past = body | {"control": unassessed.pk, "expires_at": _in_days(0).isoformat()}
    past = page_as("security").post(url, past, follow=True)
    assert "must expire in the future" in past.content.decode()
    assert not Attestation.objects.exists()
