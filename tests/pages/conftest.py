"""An estate with something on every to-do list of every home page, at a chosen size."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services as approvals
from approvals.models import AccessRequest
from inventory.detection import registry
from inventory.models import Finding, Framework, FrameworkSnapshot
from tests.factories import BindingFactory, CredentialFactory, GrantFactory, IdentityFactory, ScopeFactory, ToolFactory


def detector_of(severity: str) -> str:
    return next(d.key for d in registry.all_detectors() if d.severity == severity)


def finding(*, subject, severity: str, tool=None, identity=None, days_open: int = 3, status: str = "open") -> Finding:
    kind = {"AITool": "tool", "ServiceIdentity": "identity", "Credential": "credential", "ScopeGrant": "grant"}
    now = timezone.now()
    return Finding.objects.create(
        detector=detector_of(severity), subject_type=kind[type(subject).__name__], subject_id=subject.pk,
        tool=tool, identity=identity, severity=severity, status=status,
        first_seen_at=now - timedelta(days=days_open), recorded_last_seen_at=now,
    )  # fmt: skip


@pytest.fixture
def estate(users):
    """`make(n)`: n tools of the owner, each with an identity, a credential expiring in 3 days, a critical finding on
    the credential, a high one on a grant, a pending request, and an approved grant expiring in 5 days."""

    def make(n: int) -> dict:
        owner, security = users["owner"], users["security"]
        now = timezone.now()
        scope = ScopeFactory(name="jira:issue:read", provider="atlassian")
        made = {"tools": [], "grants": []}
        for i in range(n):
            tool = ToolFactory(owner=owner, name=f"Helpdesk Copilot {i}")
            identity = IdentityFactory(owner=owner, name=f"svc-crm-reader-{i}", provider="atlassian")
            BindingFactory(tool=tool, identity=identity)
            credential = CredentialFactory(identity=identity, expires_at=now + timedelta(days=3))
            grant = GrantFactory(identity=identity, tool=tool, expires_at=now + timedelta(days=40))
            finding(subject=credential, severity="critical", tool=tool, identity=identity, days_open=10 + i)
            finding(subject=grant, severity="high", tool=tool, identity=identity)
            approvals.request_file(
                requester=owner, tool=tool, identity=identity, items=[approvals.ScopeItem(scope, f"project:P{i}")],
                justification="The copilot reads the project's issues to answer questions about them.",
                duration_days=5,
            )  # fmt: skip
            made["tools"].append(tool)
        # The approved ones: security decides them through the workflow, which issues 5-day grants.
        for request in AccessRequest.objects.filter(status="pending").order_by("pk")[: max(1, n // 2)]:
            approvals.request_decide(actor=security, request_id=request.pk, kind="approve")
        for framework in Framework.objects.all()[:2]:
            for back in range(0, 30, 3):
                FrameworkSnapshot.objects.get_or_create(
                    day=timezone.localdate() - timedelta(days=back), framework=framework,
                    defaults={"controls": 10, "assessable": 5, "attested": 0, "tools": n, "passing": 40 + back,
                              "failing": 10, "unassessed": 0},
                )  # fmt: skip
        return made

    return make
