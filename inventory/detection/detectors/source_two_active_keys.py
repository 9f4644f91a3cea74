"""Two active access keys on one AWS IAM user: a rotation left half-done, or one user's key shared out twice."""

from django.db.models import Count, Q

from inventory.choices import CredentialKind
from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import ServiceIdentity

SOURCE = "aws-credential-report"


def query(ctx: Context):
    live_key = Q(
        credentials__revoked_at__isnull=True,
        credentials__kind=CredentialKind.API_KEY,
        credentials__sources__kind=SOURCE,
        credentials__sources__gone_at__isnull=True,
    )
    doubled = ServiceIdentity.objects.annotate(live_keys=Count("credentials", filter=live_key)).filter(live_keys__gte=2)
    return subjects(doubled, "identity", identity="pk")


DETECTOR = register(
    Detector(
        key="source_two_active_keys",
        title="Two active access keys on one IAM user",
        severity="medium",
        subject="identity",
        query=query,
        controls=("OWASP-NHI-2025:NHI7", "NIST-SP-800-53r5:IA-5", "ISO-IEC-27001-2022-AnnexA:A.5.17"),
        supporting=("OWASP-NHI-2025:NHI9", "NIST-CSF-2.0:PR.AA-01", "CIS-Controls-v8:5.5"),
        why="AWS allows two keys so that one can replace the other. Both active for long means the old one was never "
        "retired, or each is used somewhere different: twice the secret to leak, and no single owner of either.",
        what_to_do="Find which key is in use (last used date), move everything to it, deactivate and delete the other.",
        examines=(examines("identity", provider="aws"),),
    )
)
