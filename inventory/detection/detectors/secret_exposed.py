from django.db.models import Exists, OuterRef

from inventory.choices import CredentialStorage
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import AITool, Credential, ToolSecretMatch

EXPOSED_STORAGE = (CredentialStorage.PROMPT, CredentialStorage.CONNECTOR_CONFIG, CredentialStorage.REPOSITORY)


def query(ctx: Context):
    stored_badly = Credential.objects.filter(revoked_at__isnull=True, storage__in=EXPOSED_STORAGE)
    scanned = AITool.objects.filter(Exists(ToolSecretMatch.objects.filter(tool=OuterRef("pk"))))
    return [
        subjects(stored_badly, "credential", identity="identity_id"),
        subjects(scanned, "tool", identity=None, tool="pk"),
    ]


DETECTOR = register(
    Detector(
        key="secret_exposed",
        title="Secret exposed in a prompt, connector configuration or repository",
        severity="critical",
        subject="credential",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(
            "OWASP-NHI-2025:NHI2", "NIST-CSF-2.0:PR.DS-01", "NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-53r5:IA-5(7)",
            "NIST-SP-800-53r5:IA-5", "ISO-IEC-27001-2022-AnnexA:A.5.17", "ISO-IEC-27001-2022-AnnexA:A.8.12",
            "OWASP-LLM-Top10-2025:LLM02:2025",
        ),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-CSF-2.0:PR.DS-10", "NIST-CSF-2.0:PR.PS-06", "NIST-SP-800-53r5:SC-28", "NIST-SP-800-53r5:SC-12",
            "ISO-IEC-27001-2022-AnnexA:A.8.24", "ISO-IEC-27001-2022-AnnexA:A.8.9", "CIS-Controls-v8:3.13",
            "CIS-Controls-v8:3.11", "CIS-Controls-v8:16.12", "OWASP-LLM-Top10-2025:LLM07:2025",
        ),
        why="A secret in a system prompt can be talked out of the model; one in a connector configuration or a "
        "repository is readable by everyone who can read those.",
        what_to_do="Revoke and rotate the secret now, then load it at run time from a secrets manager, never from "
        "the prompt or the configuration text.",
    )
)  # fmt: skip
