from django.db.models import Exists, OuterRef, Q

from inventory.choices import IdentityStatus, ToolStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ServiceIdentity, ToolIdentity


def query(ctx: Context):
    in_use = Exists(ToolIdentity.objects.filter(identity=OuterRef("pk")).exclude(tool__status=ToolStatus.RETIRED))
    orphaned = Q(owner__is_active=False) | ~in_use
    active = ServiceIdentity.objects.filter(status=IdentityStatus.ACTIVE)
    return subjects(active.filter(orphaned), "identity", identity="pk")


DETECTOR = register(
    Detector(
        key="identity_orphaned",
        title="Orphaned identity",
        severity="high",
        subject="identity",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI1", "NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-53r5:AC-2", "NIST-SP-800-53r5:AC-2(3)",
            "ISO-IEC-27001-2022-AnnexA:A.5.16", "ISO-IEC-27001-2022-AnnexA:A.5.18", "CIS-Controls-v8:5.5",
            "CIS-Controls-v8:6.2",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-CSF-2.0:GV.RR-02", "NIST-CSF-2.0:ID.AM-08", "NIST-SP-800-207:ZT-T7", "NIST-SP-800-53r5:PS-4",
            "NIST-SP-800-53r5:PS-5", "NIST-SP-800-53r5:IA-4", "ISO-IEC-27001-2022-AnnexA:A.6.5",
            "ISO-IEC-27001-2022-AnnexA:A.5.9", "CIS-Controls-v8:5.1",
        ),
        why="Its owner has left, or no active AI tool uses it any more, yet it still works. Nobody will notice if "
        "someone else starts using it.",
        what_to_do="Give it a current owner who can vouch for it, or disable it and revoke its credentials.",
    )
)  # fmt: skip
