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
        controls=(
            "OWASP-NHI-2025:NHI2", "NIST-CSF-2.0:PR.DS-01", "NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-207:ZT-T6",
            "NIST-SP-800-53r5:IA-5(7)", "ISO-IEC-27001-2022-AnnexA:A.5.17", "ISO-IEC-27001-2022-AnnexA:A.8.12",
            "OWASP-LLM-Top10-2025:LLM07:2025", "OWASP-LLM-Top10-2025:LLM02:2025",
        ),
        why="A secret in a system prompt can be talked out of the model; one in a connector configuration or a "
        "repository is readable by everyone who can read those.",
        what_to_do="Revoke and rotate the secret now, then load it at run time from a secrets manager, never from "
        "the prompt or the configuration text.",
    )
)  # fmt: skip
