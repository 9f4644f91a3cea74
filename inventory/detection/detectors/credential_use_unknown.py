"""Live credentials whose source reports no last use (Anthropic keys, Entra secrets, GCP keys, Okta tokens...):
whether they are unused is unknown. They never count as unused (credential_stale leaves them out); this finding says
that nobody can tell, so the evidence has to come from elsewhere."""

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import Credential, SourceObject


def unknown_use():
    """Credentials a source lists without a last use: the condition credential_stale excludes."""
    return Exists(SourceObject.objects.filter(credential=OuterRef("pk"), last_use_known=False))


def query(ctx: Context):
    cutoff = ctx.now - timedelta(days=ctx.days("credential_stale_days"))
    live = Credential.objects.filter(revoked_at__isnull=True, last_used_at__isnull=True, created_at__lte=cutoff)
    live = live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ctx.now)).filter(unknown_use())
    return subjects(live, "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="credential_use_unknown",
        title="Credential whose use nobody can see",
        severity="low",
        subject="credential",
        query=query,
        controls=("NIST-CSF-2.0:DE.CM-09",),
        supporting=("OWASP-NHI-2025:NHI1", "NIST-SP-800-53r5:AC-2(3)", "NIST-SP-800-53r5:CA-7"),
        why="The provider does not report when this key was last used, so it cannot be shown unused, nor in use. It "
        "is not counted as stale; but an old key nobody can vouch for is a candidate for removal.",
        what_to_do="Check the provider's usage or audit logs for this key, record a last use through the usage API, "
        "or revoke it and see who asks.",
        thresholds={"credential_stale_days": 90},
        examines=(examines("credential", sources__last_use_known=False),),
    )
)
