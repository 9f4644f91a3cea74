"""Expiry and reminder jobs, with a frozen clock, and set-based: query counts do not grow with rows."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from approvals import policy, services
from approvals.choices import RequestStatus
from approvals.models import AccessRequest
from inventory.models import AuditEntry, ScopeGrant
from tests.factories import GrantFactory, IdentityFactory, ScopeFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _grants(n: int, *, expires_at, owner=None):
    identity = IdentityFactory(**({"owner": owner} if owner else {}))
    return [GrantFactory(identity=identity, scope=ScopeFactory(), expires_at=expires_at) for _ in range(n)]


def test_due_grants_expire_with_audit():
    due = _grants(3, expires_at=NOW - timedelta(seconds=1))
    boundary = _grants(1, expires_at=NOW)
    later = _grants(2, expires_at=NOW + timedelta(seconds=1))
    forever = _grants(1, expires_at=None)
    with time_machine.travel(NOW, tick=False):
        assert services.grants_expire_due() == 4
        assert services.grants_expire_due() == 0  # idempotent
    expired = set(ScopeGrant.objects.filter(status="expired").values_list("pk", flat=True))
    assert expired == {g.pk for g in due + boundary}
    assert ScopeGrant.objects.filter(pk__in=[g.pk for g in later + forever], status="active").count() == 3
    entries = AuditEntry.objects.filter(action="grant.expired")
    assert {int(e.object_id) for e in entries} == expired
    assert all(e.actor is None and e.actor_label == "job:approvals" for e in entries)


@pytest.mark.parametrize("rows", [5, 60])
def test_expiry_is_set_based(rows, django_assert_max_num_queries):
    _grants(rows, expires_at=NOW - timedelta(days=1))
    # One batch whatever the rows: select, update, audit, and one INSERT ... SELECT queueing the identities for a
    # targeted detection run.
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(9):
        assert services.grants_expire_due() == rows


def test_stale_pending_requests_expire(file_request):
    with time_machine.travel(NOW - timedelta(days=policy.PENDING_EXPIRY_DAYS), tick=False):
        exactly = file_request("read")
    with time_machine.travel(NOW - timedelta(days=policy.PENDING_EXPIRY_DAYS - 1), tick=False):
        fresh = file_request("write")
    with time_machine.travel(NOW, tick=False):
        assert services.requests_expire_stale() == 1
    assert AccessRequest.objects.get(pk=exactly.pk).status == RequestStatus.EXPIRED
    assert AccessRequest.objects.get(pk=fresh.pk).status == RequestStatus.PENDING
    assert AuditEntry.objects.filter(action="request.expired", object_id=str(exactly.pk)).exists()


def test_decided_requests_never_expire(file_request, security):
    with time_machine.travel(NOW - timedelta(days=30), tick=False):
        request = file_request("read")
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
    with time_machine.travel(NOW, tick=False):
        assert services.requests_expire_stale() == 0


def test_owner_is_reminded_once_seven_days_before(owner, celery_eager):
    soon = _grants(2, expires_at=NOW + timedelta(days=6), owner=owner)
    edge = _grants(1, expires_at=NOW + timedelta(days=policy.REMINDER_DAYS), owner=owner)
    _grants(1, expires_at=NOW + timedelta(days=8), owner=owner)
    _grants(1, expires_at=NOW - timedelta(days=1), owner=owner)
    with time_machine.travel(NOW, tick=False):
        assert services.grants_remind_expiring() == 3
        assert services.grants_remind_expiring() == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    for grant in soon + edge:
        assert grant.scope.name in message.body
    assert "renew" in message.body.lower()
