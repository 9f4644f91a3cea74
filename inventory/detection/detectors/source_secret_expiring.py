"""An Entra service principal's client secret or certificate that expires soon. Short lifetimes are good practice;
what needs attention is the rollover, before the app stops working and a long-lived secret gets issued in a hurry."""

from datetime import timedelta

from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import Credential

SOURCE = "entra-service-principals"


def query(ctx: Context):
    horizon = ctx.now + timedelta(days=ctx.days("entra_secret_expiring_days"))
    expiring = Credential.objects.filter(
        revoked_at__isnull=True,
        expires_at__gt=ctx.now,
        expires_at__lte=horizon,
        sources__kind=SOURCE,
        sources__gone_at__isnull=True,
    )
    return subjects(expiring, "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="source_secret_expiring",
        title="Entra secret or certificate expiring",
        severity="low",
        subject="credential",
        query=query,
        # Rotation hygiene, not a failure of NHI7 (reference/controls.md): short-lived secrets are what NHI7 asks for.
        controls=("NIST-SP-800-53r5:IA-5", "ISO-IEC-27001-2022-AnnexA:A.5.17"),
        supporting=("OWASP-NHI-2025:NHI4", "NIST-CSF-2.0:PR.AA-01"),
        why="When the secret expires the application's sign-in fails; the usual fix under pressure is a new secret "
        "with the longest lifetime Entra allows.",
        what_to_do="Add the new secret or certificate now (Entra allows several at once), switch the app over, then "
        "remove the old one.",
        thresholds={"entra_secret_expiring_days": 30},
        examines=(examines("credential", sources__kind=SOURCE),),
    )
)
