from datetime import timedelta

from django.db.models import Q

from inventory.choices import IdentityStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ServiceIdentity


def query(ctx: Context):
    cutoff = ctx.now - timedelta(days=ctx.days("third_party_review_days"))
    unreviewed = Q(last_reviewed_at__isnull=True) | Q(last_reviewed_at__lte=cutoff)
    vendors = ServiceIdentity.objects.filter(status=IdentityStatus.ACTIVE, third_party=True).filter(unreviewed)
    return subjects(vendors, "identity", identity="pk")


DETECTOR = register(
    Detector(
        key="third_party_unreviewed",
        title="Third-party identity without a recent security review",
        severity="medium",
        subject="identity",
        query=query,
        controls=(
            "OWASP-NHI-2025:NHI3", "NIST-CSF-2.0:GV.SC-07", "NIST-CSF-2.0:GV.SC-06", "NIST-SP-800-207:ZT-T5",
            "NIST-SP-800-53r5:SA-9", "NIST-SP-800-53r5:SR-6", "ISO-IEC-27001-2022-AnnexA:A.5.19",
            "ISO-IEC-27001-2022-AnnexA:A.5.22", "OWASP-LLM-Top10-2025:LLM03:2025", "OWASP-Agentic-Top10-2026:ASI04",
        ),
        why="A vendor's AI integration holds this access; if the vendor or its extension is compromised, so is the "
        "access, and nobody has checked it lately.",
        what_to_do="Review the vendor's access and scopes, record the review, and cut what the integration does not "
        "need.",
        thresholds={"third_party_review_days": 180},
    )
)  # fmt: skip
