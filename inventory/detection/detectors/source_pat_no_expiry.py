"""A GitHub fine-grained personal access token with no expiry (`token_expires_at` null): a person's access to the
organization, delegated to whatever holds the token, for ever."""

from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import Credential

SOURCE = "github-fine-grained-pats"


def query(ctx: Context):
    forever = Credential.objects.filter(
        revoked_at__isnull=True, expires_at__isnull=True, sources__kind=SOURCE, sources__gone_at__isnull=True
    )
    return subjects(forever, "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="source_pat_no_expiry",
        title="Personal access token without expiry",
        severity="high",
        subject="credential",
        query=query,
        controls=(
            "OWASP-NHI-2025:NHI7",
            "NIST-CSF-2.0:PR.AA-01",
            "NIST-SP-800-53r5:IA-5",
            "ISO-IEC-27001-2022-AnnexA:A.5.17",
        ),
        supporting=("OWASP-NHI-2025:NHI10", "NIST-SP-800-53r5:IA-5(13)"),
        why="A token without expiry outlives the task, the project and often the person's job; the org keeps "
        "trusting it until someone remembers to revoke it.",
        what_to_do="Set the organization's maximum PAT lifetime, revoke this token and have the owner create one "
        "with an expiry (or move the automation to a GitHub App).",
        examines=(examines("credential", sources__kind=SOURCE),),
    )
)
