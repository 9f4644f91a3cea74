from django.db.models import Count, Exists, OuterRef, Q

from inventory.choices import IdentityStatus, ToolStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import Credential, ServiceIdentity, ToolIdentity


def query(ctx: Context):
    shared_tool = (
        ToolIdentity.objects.exclude(tool__status=ToolStatus.RETIRED)
        .order_by()
        .values("identity_id")
        .annotate(n=Count("tool_id"))
        .filter(n__gt=1)
    ).values("identity_id")
    live = Credential.objects.filter(revoked_at__isnull=True).order_by()
    # A live secret that another identity also holds live. (Not "fingerprints held by two or more identities":
    # that counted distinct identities per fingerprint, a sort of every live credential, each scan.)
    same_secret_elsewhere = live.filter(fingerprint=OuterRef("fingerprint")).exclude(
        identity_id=OuterRef("identity_id")
    )
    shared_secret = live.filter(Exists(same_secret_elsewhere)).values("identity_id")
    reused = Q(pk__in=shared_tool) | Q(pk__in=shared_secret)
    return subjects(
        ServiceIdentity.objects.filter(status=IdentityStatus.ACTIVE).filter(reused), "identity", identity="pk"
    )


DETECTOR = register(
    Detector(
        key="identity_reused",
        title="Identity or secret shared between AI tools",
        severity="high",
        subject="identity",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI9", "NIST-CSF-2.0:PR.AA-01", "NIST-CSF-2.0:PR.AA-03", "NIST-SP-800-207:ZT-T3",
            "NIST-SP-800-53r5:IA-9", "NIST-SP-800-53r5:AC-2(9)", "ISO-IEC-27001-2022-AnnexA:A.5.16",
            "OWASP-Agentic-Top10-2026:ASI03",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "OWASP-NHI-2025:NHI8", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-207:ZT-T4", "NIST-SP-800-53r5:IA-4",
            "NIST-SP-800-53r5:IA-2", "NIST-SP-800-53r5:AU-10", "ISO-IEC-27001-2022-AnnexA:A.5.17",
            "CIS-Controls-v8:5.2", "CIS-Controls-v8:5.5",
        ),
        why="When two tools act as one identity, or two identities hold the same secret, nobody can tell afterwards "
        "which tool did what, and one compromise reaches both.",
        what_to_do="Give each tool its own identity and its own secret, each with only the scopes that tool needs.",
    )
)  # fmt: skip
