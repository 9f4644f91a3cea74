"""grant_unapproved: registered with the inventory's detector registry, because only approvals knows what was
approved."""

from django.db.models import Exists, F, OuterRef, Q

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ScopeGrant

from . import policy
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
    # Below the policy for its tool as the tool is now: approved by one person before the tool moved to production or
    # restricted data, say. A grant for any tool is held to the strict scope rules only here (authorize holds it to
    # the acting tool at each decision).
    below_policy = policy.grant_below_policy_q(scope="scope__", tool="tool__")
    unapproved = ScopeGrant.objects.active(at=ctx.now).filter(~Exists(issued) | beyond_approval | below_policy)
    return subjects(unapproved, "grant", identity="identity_id")


DETECTOR = register(
    Detector(
        key="grant_unapproved",
        title="Grant without an approval that covers it: none, below today's policy, or beyond its duration",
        severity="high",
        subject="grant",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-53r5:AC-2", "ISO-IEC-27001-2022-AnnexA:A.5.18",
            "CIS-Controls-v8:6.1",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "OWASP-NHI-2025:NHI5", "NIST-CSF-2.0:ID.RA-07", "NIST-SP-800-207:ZT-T4", "NIST-SP-800-53r5:AC-6(7)",
            "NIST-SP-800-53r5:AC-2(2)", "ISO-IEC-27001-2022-AnnexA:A.8.2", "ISO-IEC-27001-2022-AnnexA:A.5.15",
            "CIS-Controls-v8:6.8", "OWASP-LLM-Top10-2025:LLM06:2025", "OWASP-Agentic-Top10-2026:ASI03",
        ),
        why="Nobody approved this access through the workflow (an import only observes it), its approval is weaker "
        "than the policy now asks for its tool, or it has outlived the approval it had: nobody is accountable for it "
        "being there, and authorize denies it.",
        what_to_do="Revoke it, or have the owner file a request so security can approve it for a bounded time.",
    )
)  # fmt: skip
