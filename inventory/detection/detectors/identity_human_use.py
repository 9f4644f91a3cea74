from inventory.choices import IdentityStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ServiceIdentity


def query(ctx: Context):
    seen = ServiceIdentity.objects.filter(status=IdentityStatus.ACTIVE, interactive_use_seen=True)
    return subjects(seen, "identity", identity="pk")


DETECTOR = register(
    Detector(
        key="identity_human_use",
        title="People sign in with a service identity",
        severity="high",
        subject="identity",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI10", "NIST-CSF-2.0:DE.CM-03", "NIST-SP-800-207:ZT-T4", "NIST-SP-800-53r5:AC-2(11)",
            "NIST-SP-800-53r5:AC-2(12)", "ISO-IEC-27001-2022-AnnexA:A.5.16", "ISO-IEC-27001-2022-AnnexA:A.8.16",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-CSF-2.0:PR.AA-01", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-207:ZT-T6", "NIST-SP-800-53r5:IA-2",
            "NIST-SP-800-53r5:AC-2(9)", "NIST-SP-800-53r5:AU-10", "NIST-SP-800-53r5:AU-6",
            "ISO-IEC-27001-2022-AnnexA:A.8.2", "CIS-Controls-v8:5.4", "CIS-Controls-v8:8.11",
        ),
        why="Interactive sign-ins with the AI tool's identity mean a person is borrowing its access: their actions "
        "are attributed to the tool, and the tool's access outlives any review of theirs.",
        what_to_do="Find who signs in, give them their own account, and block interactive sign-in for this identity.",
    )
)  # fmt: skip
