from datetime import timedelta

from django.db.models import Q

from inventory.choices import CredentialKind
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import Credential

# Secrets that live until someone replaces them, unlike short-lived tokens and certificates.
STATIC_KINDS = (CredentialKind.API_KEY, CredentialKind.CLIENT_SECRET, CredentialKind.PASSWORD, CredentialKind.SSH_KEY)


def query(ctx: Context):
    cutoff = ctx.now - timedelta(days=ctx.days("credential_rotation_days"))
    not_rotated = Q(last_rotated_at__lte=cutoff) | Q(last_rotated_at__isnull=True, created_at__lte=cutoff)
    never_expires = Q(expires_at__isnull=True, kind__in=STATIC_KINDS)
    live = Credential.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=ctx.now)
    )
    return subjects(live.filter(not_rotated | never_expires), "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="credential_not_rotated",
        title="Long-lived credential",
        severity="high",
        subject="credential",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI7", "NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-207:ZT-T3", "NIST-SP-800-53r5:IA-5",
            "ISO-IEC-27001-2022-AnnexA:A.5.17",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "OWASP-NHI-2025:NHI4", "NIST-CSF-2.0:PR.AA-03", "NIST-SP-800-207:ZT-T6", "NIST-SP-800-53r5:SC-12",
            "NIST-SP-800-53r5:IA-5(2)", "NIST-SP-800-53r5:IA-5(13)", "ISO-IEC-27001-2022-AnnexA:A.8.24",
            "ISO-IEC-27001-2022-AnnexA:A.8.5", "CIS-Controls-v8:5.5", "OWASP-Agentic-Top10-2026:ASI03",
        ),
        why="A secret that is never rotated, or never expires, stays useful to whoever copies it, for as long as the "
        "AI tool that holds it exists.",
        what_to_do="Rotate it now, give it an expiry, and move the tool to short-lived tokens issued per task.",
        thresholds={"credential_rotation_days": 90},
    )
)  # fmt: skip
