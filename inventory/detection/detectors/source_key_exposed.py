"""A key the provider itself reported exposed (GCP `disableReason` SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED): the
secret was found in public. Disabling the key does not undo what was done with it before."""

from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import Credential


def query(ctx: Context):
    # Revoked or not: the finding is the leak, which needs an investigation either way.
    return subjects(Credential.objects.filter(sources__exposed=True), "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="source_key_exposed",
        title="Provider reports the key exposed",
        severity="critical",
        subject="credential",
        query=query,
        controls=(
            "OWASP-NHI-2025:NHI2",
            "NIST-CSF-2.0:PR.DS-01",
            "NIST-SP-800-53r5:IA-5",
            "ISO-IEC-27001-2022-AnnexA:A.5.17",
        ),
        supporting=("NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-53r5:IA-5(7)", "ISO-IEC-27001-2022-AnnexA:A.8.12"),
        why="The provider found this key where anyone could read it (a public repository, a paste). Whoever found it "
        "first may have used it before it was disabled.",
        what_to_do="Delete the key, review the account's audit logs from the key's creation to now, find where it "
        "leaked and remove it there, and issue a replacement kept in a secrets manager.",
        examines=(examines("credential", sources__object_type="credential"),),
    )
)
