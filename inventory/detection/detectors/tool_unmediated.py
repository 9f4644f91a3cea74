from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from inventory.choices import GrantStatus, ToolStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import AccessEvent, AITool, ScopeGrant, ToolIdentity


def query(ctx: Context):
    since = ctx.now - timedelta(days=ctx.days("unattributed_event_days"))
    live_grant = ScopeGrant.objects.filter(status=GrantStatus.ACTIVE, identity_id=OuterRef("identity_id")).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=ctx.now)
    )
    # A binding whose identity holds a live grant. Written as nested EXISTS (not grants whose identity is IN the
    # tool's bindings) so that PostgreSQL plans semi-joins; the IN form re-ran the bindings lookup for every pair of
    # tool and grant, which grows as tools x grants.
    has_grants = Exists(ToolIdentity.objects.filter(tool=OuterRef("pk")).filter(Exists(live_grant)))
    anonymous_use = Exists(AccessEvent.objects.filter(tool=OuterRef("pk"), occurred_at__gte=since, on_behalf_of_ref=""))
    unmediated = Q(enforces_authorization=False) | anonymous_use
    tools = AITool.objects.exclude(status=ToolStatus.RETIRED).filter(has_grants).filter(unmediated)
    return subjects(tools, "tool", identity=None, tool="pk")


DETECTOR = register(
    Detector(
        key="tool_unmediated",
        title="AI tool acts without per-request authorization or attribution",
        severity="high",
        subject="tool",
        query=query,
        controls=(
            "NIST-CSF-2.0:PR.AA-04", "NIST-CSF-2.0:PR.AA-05", "NIST-CSF-2.0:PR.PS-04", "NIST-SP-800-207:ZT-T6",
            "NIST-SP-800-207:ZT-T3", "NIST-SP-800-53r5:AC-3", "NIST-SP-800-53r5:AU-3", "NIST-SP-800-53r5:AU-10",
            "NIST-SP-800-53r5:AC-24", "ISO-IEC-27001-2022-AnnexA:A.5.15", "ISO-IEC-27001-2022-AnnexA:A.8.15",
            "OWASP-LLM-Top10-2025:LLM06:2025", "OWASP-Agentic-Top10-2026:ASI03", "OWASP-NHI-2025:NHI5",
            "OWASP-NHI-2025:NHI10",
        ),
        why="The tool holds live grants but does not ask before acting, or its actions do not say which person they "
        "were for: afterwards nobody can tell who did what, and nothing stops it doing more than its user may.",
        what_to_do="Route the tool through a gateway that calls POST /api/v1/authorize/ before every action, naming "
        "the human it acts for.",
        thresholds={"unattributed_event_days": 7},
    )
)  # fmt: skip
