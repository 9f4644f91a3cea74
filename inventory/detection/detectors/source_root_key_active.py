"""An active access key on the AWS root user (credential report `<root_account>`): the account's unrestricted
power in a static secret."""

from inventory.choices import CredentialKind
from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import Credential


def query(ctx: Context):
    root_keys = Credential.objects.filter(
        revoked_at__isnull=True, kind=CredentialKind.API_KEY, sources__is_root=True, sources__gone_at__isnull=True
    )
    return subjects(root_keys, "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="source_root_key_active",
        title="Active access key on the AWS root user",
        severity="critical",
        subject="credential",
        query=query,
        controls=("OWASP-NHI-2025:NHI5", "NIST-CSF-2.0:PR.AA-05", "NIST-SP-800-53r5:AC-6(5)", "CIS-Controls-v8:5.4"),
        supporting=("OWASP-NHI-2025:NHI7", "NIST-SP-800-53r5:IA-5", "ISO-IEC-27001-2022-AnnexA:A.8.2"),
        why="The root user can do anything in the account, including closing it, and no policy limits it. A static "
        "key for it means whoever holds the key holds the whole account.",
        what_to_do="Delete the root access key (IAM, Security credentials of the root user); give automation its own "
        "least-privilege role instead.",
        examines=(examines("credential", sources__is_root=True),),
    )
)
