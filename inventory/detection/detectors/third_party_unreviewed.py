from datetime import timedelta

from django.db.models import Q

from inventory.choices import IdentityStatus
from inventory.detection.registry import Context, Detector, examines, register
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
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI3", "NIST-CSF-2.0:GV.SC-07", "NIST-SP-800-53r5:SA-9", "NIST-SP-800-53r5:SR-6",
            "ISO-IEC-27001-2022-AnnexA:A.5.19", "ISO-IEC-27001-2022-AnnexA:A.5.22", "CIS-Controls-v8:15.5",
            "CIS-Controls-v8:15.6", "OWASP-LLM-Top10-2025:LLM03:2025", "OWASP-Agentic-Top10-2026:ASI04",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-CSF-2.0:GV.SC-06", "NIST-CSF-2.0:GV.SC-04", "NIST-CSF-2.0:ID.AM-04", "NIST-CSF-2.0:ID.RA-10",
            "NIST-CSF-2.0:DE.CM-06", "NIST-CSF-2.0:GV.SC-10", "NIST-SP-800-207:ZT-T5", "NIST-SP-800-53r5:SR-3",
            "NIST-SP-800-53r5:IA-8", "ISO-IEC-27001-2022-AnnexA:A.5.20", "ISO-IEC-27001-2022-AnnexA:A.5.21",
            "ISO-IEC-27001-2022-AnnexA:A.5.23", "CIS-Controls-v8:15.1", "CIS-Controls-v8:15.3",
            "CIS-Controls-v8:15.7",
        ),
        examines=(examines("identity", third_party=True),),
        why="A vendor's AI integration holds this access; if the vendor or its extension is compromised, so is the "
        "access, and nobody has checked it lately.",
        what_to_do="Review the vendor's access and scopes, record the review, and cut what the integration does not "
        "need.",
        thresholds={"third_party_review_days": 180},
    )
)  # fmt: skip
