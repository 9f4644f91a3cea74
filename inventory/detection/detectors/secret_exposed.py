from django.db.models import Exists, OuterRef

from inventory.choices import CredentialStorage
from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import AITool, Credential, ToolSecretMatch

# A secret in a prompt is `secret_in_prompt`'s: that case alone decides LLM07.
PROMPT_FIELD = "prompt_templates"
EXPOSED_STORAGE = (CredentialStorage.CONNECTOR_CONFIG, CredentialStorage.REPOSITORY)

# Reference check g (secret embedded in a prompt, connector configuration or repository), less LLM07, which the prompt
# case alone decides. Primary: its findings fail these, and its clean, current run passes them.
CONTROLS = (
    "OWASP-NHI-2025:NHI2", "NIST-CSF-2.0:PR.DS-01", "NIST-CSF-2.0:PR.AA-01", "NIST-SP-800-53r5:IA-5(7)",
    "NIST-SP-800-53r5:IA-5", "ISO-IEC-27001-2022-AnnexA:A.5.17", "ISO-IEC-27001-2022-AnnexA:A.8.12",
    "OWASP-LLM-Top10-2025:LLM02:2025",
)  # fmt: skip
# Supporting: related evidence, shown beside these controls, never deciding them.
SUPPORTING = (
    "NIST-CSF-2.0:PR.DS-10", "NIST-CSF-2.0:PR.PS-06", "NIST-SP-800-53r5:SC-28", "NIST-SP-800-53r5:SC-12",
    "ISO-IEC-27001-2022-AnnexA:A.8.24", "ISO-IEC-27001-2022-AnnexA:A.8.9", "CIS-Controls-v8:3.13",
    "CIS-Controls-v8:3.11", "CIS-Controls-v8:16.12",
)  # fmt: skip


def query(ctx: Context):
    stored_badly = Credential.objects.filter(revoked_at__isnull=True, storage__in=EXPOSED_STORAGE)
    in_text = ToolSecretMatch.objects.filter(tool=OuterRef("pk")).exclude(field=PROMPT_FIELD)
    scanned = AITool.objects.filter(Exists(in_text))
    return [
        subjects(stored_badly, "credential", identity="identity_id"),
        subjects(scanned, "tool", identity=None, tool="pk"),
    ]


DETECTOR = register(
    Detector(
        key="secret_exposed",
        title="Secret exposed in a connector configuration or repository",
        severity="critical",
        subject="credential",
        query=query,
        controls=CONTROLS,
        supporting=SUPPORTING,
        why="A secret in a connector configuration or a repository is readable by everyone who can read those.",
        what_to_do="Contain it, revoke and rotate the secret, then load it at run time from a secrets manager, "
        "never from the configuration text.",
    )
)  # fmt: skip
