"""The demo data meets the scopes-by-provider rule: every request it files asks for scopes of the identity's own
provider, and a demo database seeded by an earlier version (with cross-provider requests pending) converges."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import F

from approvals.models import AccessRequest, RequestedScope
from inventory.models import AITool, Scope, ServiceIdentity

pytestmark = pytest.mark.django_db


def _seed():
    call_command("seed_demo", "--quiet-logins", stdout=StringIO())


def _cross_provider(**filters):
    return RequestedScope.objects.filter(**filters).exclude(scope__provider=F("request__identity__provider"))


def test_the_demo_files_no_cross_provider_request():
    _seed()
    assert AccessRequest.objects.filter(status="pending").count() == 3
    assert AccessRequest.objects.filter(status="approved").count() == 2
    assert not _cross_provider().exists()
    # The gateway walkthrough's grant still stands: docs-mcp reads the ENG space through svc-docs-reader.
    assert ServiceIdentity.objects.get(name="svc-docs-reader").provider == "atlassian"
    assert RequestedScope.objects.filter(
        request__status="approved", request__identity__name="svc-docs-reader", scope__name="confluence:content:read",
        resource_constraint="space:ENG",
    ).exists()  # fmt: skip
    _seed()  # again: nothing new filed
    assert AccessRequest.objects.count() == 5


def test_an_old_demo_database_converges():
    _seed()
    # As the earlier demo filed it (directly: the service refuses it now).
    tool = AITool.objects.get(slug="support-bot")
    identity = ServiceIdentity.objects.get(name="svc-crm-reader")
    old = AccessRequest.objects.create(
        requester=tool.owner, tool=tool, identity=identity, duration_days=7, required_approvals=1,
        justification="The bot should post the account summary it reads back into the customer's ticket.",
    )  # fmt: skip
    RequestedScope.objects.create(request=old, scope=Scope.objects.get(name="zendesk:tickets:write"))
    assert _cross_provider(request__status="pending").exists()
    _seed()
    old.refresh_from_db()
    assert old.status == "cancelled"
    assert not _cross_provider(request__status="pending").exists()
