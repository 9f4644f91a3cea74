"""grant_unapproved: registered with the inventory's detector registry, because only approvals knows what was
approved."""

from django.db.models import Exists, F, OuterRef, Q

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ScopeGrant

from .models import GrantIssue


def query(ctx: Context):
    issued = GrantIssue.objects.filter(grant=OuterRef("pk"))
    beyond_approval = Exists(
        issued.filter(
            Q(approved_until__lt=ctx.now)
            | Q(grant__expires_at__isnull=True)
            | Q(grant__expires_at__gt=F("approved_until"))
        )
    )
    unapproved = ScopeGrant.objects.active(at=ctx.now).filter(~Exists(issued) | beyond_approval)
    return subjects(unapproved, "grant", identity="identity_id")


DETECTOR = register(
    Detector(
        key="grant_unapproved",
        title="Grant without an approved request, or beyond its approved duration",
        severity="high",
        subject="grant",
        query=query,
        controls=(
            "NIST-CSF-2.0:PR.AA-05", "OWASP-NHI-2025:NHI5", "NIST-SP-800-207:ZT-T4", "NIST-SP-800-53r5:AC-2",
            "ISO-IEC-27001-2022-AnnexA:A.5.18", "NIST-CSF-2.0:ID.RA-07", "OWASP-LLM-Top10-2025:LLM06:2025",
        ),
        why="Nobody approved this access through the workflow, or it has outlived the approval it had, so nobody is "
        "accountable for it being there.",
        what_to_do="Revoke it, or have the owner file a request so security can approve it for a bounded time.",
    )
)  # fmt: skip
