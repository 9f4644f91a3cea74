from django.db.models import Exists, OuterRef

from inventory.choices import Environment, IdentityStatus, ToolStatus
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import ServiceIdentity, ToolIdentity


def query(ctx: Context):
    bindings = ToolIdentity.objects.filter(identity=OuterRef("pk")).exclude(tool__status=ToolStatus.RETIRED)
    in_prod = Exists(bindings.filter(tool__environment=Environment.PROD))
    outside_prod = Exists(bindings.exclude(tool__environment=Environment.PROD))
    mixed = ServiceIdentity.objects.filter(status=IdentityStatus.ACTIVE).filter(in_prod & outside_prod)
    return subjects(mixed, "identity", identity="pk")


DETECTOR = register(
    Detector(
        key="identity_env_mixed",
        title="Identity used in production and outside it",
        severity="medium",
        subject="identity",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI8", "NIST-CSF-2.0:PR.IR-01", "NIST-SP-800-53r5:SC-32",
            "ISO-IEC-27001-2022-AnnexA:A.8.31", "CIS-Controls-v8:16.8",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "OWASP-NHI-2025:NHI9", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-207:ZT-T3", "NIST-SP-800-53r5:CM-2(6)",
            "NIST-SP-800-53r5:AC-6",
        ),
        why="A staging or development tool holding a production identity turns the weakest environment into a way "
        "into the strongest.",
        what_to_do="Issue a separate identity per environment and keep production secrets out of non-production "
        "tools.",
    )
)  # fmt: skip
