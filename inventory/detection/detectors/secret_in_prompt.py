"""A secret in an AI tool's system prompt or prompt templates: the case OWASP's LLM07 (System Prompt Leakage) is
about, since a model can be talked into repeating its prompt. It is split from `secret_exposed` (connector
configuration and repositories) so that LLM07 is decided by the prompt case alone, as the reference mapping asks
(reference/controls.md, check g); every other control of check g is primary for both."""

from django.db.models import Exists, OuterRef

from inventory.choices import CredentialStorage
from inventory.detection.detectors import secret_exposed
from inventory.detection.detectors.secret_exposed import PROMPT_FIELD
from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import AITool, Credential, ToolSecretMatch


def query(ctx: Context):
    stored_in_prompt = Credential.objects.filter(revoked_at__isnull=True, storage=CredentialStorage.PROMPT)
    pasted = AITool.objects.filter(Exists(ToolSecretMatch.objects.filter(tool=OuterRef("pk"), field=PROMPT_FIELD)))
    return [
        subjects(stored_in_prompt, "credential", identity="identity_id"),
        subjects(pasted, "tool", identity=None, tool="pk"),
    ]


DETECTOR = register(
    Detector(
        key="secret_in_prompt",
        title="Secret in an AI tool's prompt",
        severity="critical",
        subject="credential",
        query=query,
        # Primary: LLM07 and every control secret_exposed decides; supporting as there.
        controls=("OWASP-LLM-Top10-2025:LLM07:2025", *secret_exposed.CONTROLS),
        supporting=secret_exposed.SUPPORTING,
        # Its silence says something only about a prompt it has read: a tool without prompt text is not assessed
        # for LLM07, rather than passing it.
        examines=(examines("tool", "prompt templates", prompt_templates__gt=""),),
        depends_on=("credential", "tool.prompt_templates"),
        why="A secret in a system prompt can be talked out of the model by anyone who can talk to the tool, and it "
        "travels with every request to the model vendor.",
        what_to_do="Contain it (authorize then refuses every call through the identity), revoke and rotate the "
        "secret, and give the tool the new one at run time from a secrets manager, never in the prompt.",
    )
)
