from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import Credential, SourceObject


def query(ctx: Context):
    cutoff = ctx.now - timedelta(days=ctx.days("credential_stale_days"))
    # Never used means unused only where the source reports use: a key whose source has no last-used field (Anthropic,
    # Entra, GCP key listings) is unknown, never unused (credential_use_unknown reports those). Discovery, issue 14.
    use_unknown = Exists(SourceObject.objects.filter(credential=OuterRef("pk"), last_use_known=False))
    unused = Q(last_used_at__lte=cutoff) | (Q(last_used_at__isnull=True, created_at__lte=cutoff) & ~use_unknown)
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
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI1", "NIST-CSF-2.0:PR.AA-01", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-53r5:AC-2(3)",
            "ISO-IEC-27001-2022-AnnexA:A.5.18", "CIS-Controls-v8:5.3",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-CSF-2.0:DE.CM-03", "NIST-SP-800-207:ZT-T7", "NIST-SP-800-53r5:AC-2", "NIST-SP-800-53r5:AC-6(7)",
            "ISO-IEC-27001-2022-AnnexA:A.5.16", "CIS-Controls-v8:5.5", "CIS-Controls-v8:5.1",
        ),
        why="Nobody has used this credential for months. Unused access is pure risk: it can only be used by someone "
        "who should not have it.",
        what_to_do="Revoke it. If something breaks, the owner learns what still needed it and can request it back.",
        thresholds={"credential_stale_days": 90},
    )
)  # fmt: skip
