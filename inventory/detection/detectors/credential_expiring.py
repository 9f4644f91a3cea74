from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import Credential


def query(ctx: Context):
    horizon = ctx.now + timedelta(days=ctx.days("credential_expiring_days"))
    successor = Credential.objects.filter(
        identity=OuterRef("identity_id"), created_at__gt=OuterRef("created_at"), revoked_at__isnull=True
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=OuterRef("expires_at")))
    expiring = Credential.objects.filter(revoked_at__isnull=True, expires_at__gt=ctx.now, expires_at__lte=horizon)
    return subjects(expiring.filter(~Exists(successor)), "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="credential_expiring",
        title="Credential about to expire with no successor",
        severity="low",
        subject="credential",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "OWASP-NHI-2025:NHI7", "OWASP-NHI-2025:NHI4", "NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-207:ZT-T6",
            "NIST-SP-800-53r5:IA-5", "ISO-IEC-27001-2022-AnnexA:A.5.17",
        ),
        why="When it expires the tool stops working, and the usual fix under pressure is a new secret without an "
        "expiry.",
        what_to_do="Issue the replacement now, with an expiry, and switch the tool over before the old one lapses.",
        thresholds={"credential_expiring_days": 14},
    )
)  # fmt: skip
