from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from inventory.choices import ScopeRisk, ToolStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ScopeGrant, ToolIdentity


def query(ctx: Context):
    cutoff = ctx.now - timedelta(days=ctx.days("grant_unused_days"))
    behind_ai_tool = Exists(
        ToolIdentity.objects.filter(identity=OuterRef("identity_id")).exclude(tool__status=ToolStatus.RETIRED)
    )
    unused = Q(last_used_at__lte=cutoff) | Q(last_used_at__isnull=True, granted_at__lte=cutoff)
    broad = Q(scope__risk=ScopeRisk.ADMIN) | Q(scope__name__contains="*")
    active = ScopeGrant.objects.active(at=ctx.now)
    return subjects(active.filter(unused | (broad & behind_ai_tool)), "grant", identity="identity_id")


DETECTOR = register(
    Detector(
        key="grant_unused",
        title="Overprivileged: scope granted but not used, or admin scope behind an AI tool",
        severity="high",
        subject="grant",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI5", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-207:ZT-T3", "NIST-SP-800-53r5:AC-6",
            "NIST-SP-800-53r5:AC-6(7)", "ISO-IEC-27001-2022-AnnexA:A.5.15", "ISO-IEC-27001-2022-AnnexA:A.5.18",
            "CIS-Controls-v8:6.8", "OWASP-LLM-Top10-2025:LLM06:2025",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-SP-800-207:ZT-T4", "NIST-SP-800-53r5:AC-2", "NIST-SP-800-53r5:AC-3", "NIST-SP-800-53r5:AC-6(9)",
            "ISO-IEC-27001-2022-AnnexA:A.8.2", "ISO-IEC-27001-2022-AnnexA:A.8.3", "CIS-Controls-v8:3.3",
            "CIS-Controls-v8:5.4", "OWASP-Agentic-Top10-2026:ASI03", "OWASP-Agentic-Top10-2026:ASI02",
        ),
        why="Whatever the identity may do, the AI tool may do, including whatever a prompt injection talks it into. "
        "Permissions granted but never exercised, and admin or wildcard scopes, widen that blast radius for nothing.",
        what_to_do="Revoke the unused scope, or replace it with a narrower one limited to the resources the tool "
        "touches.",
        thresholds={"grant_unused_days": 60},
    )
)  # fmt: skip
