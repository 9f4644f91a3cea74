from datetime import timedelta

from django.db.models import Q

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import Credential


def query(ctx: Context):
    cutoff = ctx.now - timedelta(days=ctx.days("credential_stale_days"))
    unused = Q(last_used_at__lte=cutoff) | Q(last_used_at__isnull=True, created_at__lte=cutoff)
    return subjects(
        Credential.objects.filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ctx.now))
        .filter(unused),
        "credential",
        identity="identity_id",
    )


DETECTOR = register(
    Detector(
        key="credential_stale",
        title="Stale credential",
        severity="medium",
        subject="credential",
        query=query,
        controls=(
            "OWASP-NHI-2025:NHI1", "NIST-CSF-2.0:PR.AA-01", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-207:ZT-T7",
            "NIST-SP-800-53r5:AC-2(3)", "ISO-IEC-27001-2022-AnnexA:A.5.18", "CIS-Controls-v8:5.3",
        ),
        why="Nobody has used this credential for months. Unused access is pure risk: it can only be used by someone "
        "who should not have it.",
        what_to_do="Revoke it. If something breaks, the owner learns what still needed it and can request it back.",
        thresholds={"credential_stale_days": 90},
    )
)  # fmt: skip
