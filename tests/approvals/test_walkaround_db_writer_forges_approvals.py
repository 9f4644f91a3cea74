"""Walk-around found in review, now refused: A database writer (no seal key) turns an imported, never-approved
grant into an allowing one with one UPDATE of the unsigned `approvals` column: no request, no decision, no
GrantIssue, no audit entry; authorize allows."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from inventory.models import AuditEntry
from tests.factories import CredentialFactory, GrantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_update_approvals_column_makes_an_unapproved_grant_allow(api_as, tool, identity, scopes):
    alice = UserFactory(username="alice")
    tool.allowed_users.add(alice)
    CredentialFactory(identity=identity)
    grant = GrantFactory(identity=identity, scope=scopes["write"], tool=tool, approvals=0)
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "on_behalf_of": "alice", "scope": "tickets:write"}
    assert api_as("gateway").post("/api/v1/authorize/", body, format="json").json()["reason"] == "grant_unapproved"
    audit_before = AuditEntry.objects.count()
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_scopegrant SET approvals = 2 WHERE id = %s", [grant.pk])
    answer = api_as("gateway").post("/api/v1/authorize/", body, format="json").json()
    assert AuditEntry.objects.count() == audit_before
    assert answer["decision"] == "deny", answer
