"""An AI tool the catalog recognised among discovered identities, which nobody has registered or dismissed: shadow
AI. One finding per identity of each open suggestion."""

from inventory.choices import IdentityStatus
from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import AIToolSuggestion, ServiceIdentity


def query(ctx: Context):
    suggested = ServiceIdentity.objects.filter(
        status=IdentityStatus.ACTIVE, ai_suggestions__status=AIToolSuggestion.Status.OPEN
    ).distinct()
    return subjects(suggested, "identity", identity="pk")


DETECTOR = register(
    Detector(
        key="ai_tool_unregistered",
        title="Unregistered AI tool",
        severity="high",
        subject="identity",
        query=query,
        controls=("NIST-CSF-2.0:ID.AM-02", "NIST-SP-800-53r5:CM-8", "ISO-IEC-27001-2022-AnnexA:A.5.9"),
        supporting=("OWASP-NHI-2025:NHI3", "OWASP-LLM-Top10-2025:LLM03:2025", "OWASP-Agentic-Top10-2026:ASI04"),
        why="An AI tool acts through this identity, but it is not in the inventory: nobody owns it, approved its "
        "access or reviews what it does with the organization's data.",
        what_to_do="Accept the suggestion on the Sources page (it registers the tool and binds its identities) and "
        "give it an owner, or dismiss it with the reason.",
        examines=(examines("identity", ai_suggestions__isnull=False),),
    )
)
