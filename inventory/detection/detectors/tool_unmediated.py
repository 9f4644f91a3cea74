from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from inventory.choices import GrantStatus, ToolStatus
from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import AccessEvent, AITool, ScopeGrant, ToolIdentity
from nhi_portal import roles


def query(ctx: Context):
    since = ctx.now - timedelta(days=ctx.days("unattributed_event_days"))
    live_grant = ScopeGrant.objects.filter(status=GrantStatus.ACTIVE, identity_id=OuterRef("identity_id")).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=ctx.now)
    )
    # A binding whose identity holds a live grant. Written as nested EXISTS (not grants whose identity is IN the
    # tool's bindings) so that PostgreSQL plans semi-joins; the IN form re-ran the bindings lookup for every pair of
    # tool and grant, which grows as tools x grants.
    has_grants = Exists(ToolIdentity.objects.filter(tool=OuterRef("pk")).filter(Exists(live_grant)))
    recent = AccessEvent.objects.filter(tool=OuterRef("pk"), occurred_at__gte=since)
    anonymous_use = Exists(recent.filter(on_behalf_of_ref=""))
    # A tool whose calls arrive through a gateway (the MCP gateway, say) is mediated whatever its own flag says: it
    # was allowed, for a named human, before it acted, and nothing it did was seen without such an allow before it
    # (usage a gateway reports names the allow it followed; usage seen elsewhere names none).
    # Only a gateway account's asking counts: security may ask /authorize/ by hand, which mediates nothing.
    gateways = (
        get_user_model()
        .objects.filter(groups__name=roles.GATEWAY, is_active=True)
        .exclude(groups__name=roles.SECURITY)  # as roles.is_gateway reads it: security asking is never a gateway
        .values("username")
    )
    allowed_first = Exists(recent.filter(kind=AccessEvent.Kind.DECISION, decision=AccessEvent.Decision.ALLOW,
                                         on_behalf_of__isnull=False, source__in=gateways))  # fmt: skip
    acted_unasked = Exists(recent.filter(kind=AccessEvent.Kind.OBSERVED, decision_event__isnull=True))
    gateway_asked = allowed_first & ~acted_unasked
    unmediated = (Q(enforces_authorization=False) & ~gateway_asked) | anonymous_use
    tools = AITool.objects.exclude(status=ToolStatus.RETIRED).filter(has_grants).filter(unmediated)
    return subjects(tools, "tool", identity=None, tool="pk")


DETECTOR = register(
    Detector(
        key="tool_unmediated",
        title="AI tool acts without per-request authorization or attribution",
        severity="high",
        subject="tool",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "NIST-CSF-2.0:PR.AA-04", "NIST-CSF-2.0:PR.AA-05", "NIST-CSF-2.0:PR.PS-04", "NIST-SP-800-207:ZT-T6",
            "NIST-SP-800-207:ZT-T3", "NIST-SP-800-53r5:AC-3", "NIST-SP-800-53r5:IA-2", "NIST-SP-800-53r5:AU-3",
            "NIST-SP-800-53r5:AU-10", "ISO-IEC-27001-2022-AnnexA:A.5.15", "ISO-IEC-27001-2022-AnnexA:A.8.15",
            "CIS-Controls-v8:8.5", "OWASP-LLM-Top10-2025:LLM06:2025", "OWASP-Agentic-Top10-2026:ASI03",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "OWASP-NHI-2025:NHI5", "NIST-CSF-2.0:PR.AA-03", "NIST-CSF-2.0:DE.CM-09", "NIST-SP-800-207:ZT-T7",
            "NIST-SP-800-53r5:AC-24", "NIST-SP-800-53r5:AU-2", "NIST-SP-800-53r5:AU-12", "NIST-SP-800-53r5:AC-6(9)",
            "NIST-SP-800-53r5:AU-9", "ISO-IEC-27001-2022-AnnexA:A.8.5", "CIS-Controls-v8:8.2",
        ),
        examines=(examines("grant"),),
        why="The tool holds live grants but does not ask before acting, or its actions do not say which person they "
        "were for: afterwards nobody can tell who did what, and nothing stops it doing more than its user may.",
        what_to_do="Route the tool through a gateway that calls POST /api/v1/authorize/ before every action, naming "
        "the human it acts for.",
        thresholds={"unattributed_event_days": 7},
    )
)  # fmt: skip
