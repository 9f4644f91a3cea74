"""fact_change_unreviewed: an owner lowered a fact the rules rely on, and security has not looked at it yet.

The people a rule governs must not be able to clear its findings by saying so: moving a credential's storage to
"vault", marking an identity first-party or a tool as development clears findings at the next scan, without any
rotation or review. Such a change is kept (inventory.models.FactChange) and reported here until security confirms
it (inventory.detection.triage.findings_confirm_changes).
"""

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import AITool, Credential, FactChange, ServiceIdentity, SubjectType


def _changed(subject_type: str):
    return FactChange.objects.filter(subject_type=subject_type, reviewed_at__isnull=True).values("subject_id")


def query(ctx: Context):
    return [
        subjects(AITool.objects.filter(pk__in=_changed(SubjectType.TOOL)), "tool", identity=None, tool="pk"),
        subjects(ServiceIdentity.objects.filter(pk__in=_changed(SubjectType.IDENTITY)), "identity", identity="pk"),
        subjects(
            Credential.objects.filter(pk__in=_changed(SubjectType.CREDENTIAL)), "credential", identity="identity_id"
        ),
    ]


DETECTOR = register(
    Detector(
        key="fact_change_unreviewed",
        title="Risk-lowering change by an owner, not yet reviewed by security",
        severity="high",
        subject="tool",
        query=query,
        # Primary: its findings fail these, and its clean, current run passes them.
        controls=(),
        # Supporting: related evidence, shown beside these controls, never deciding them.
        supporting=(
            "NIST-CSF-2.0:PR.PS-01",
            "NIST-SP-800-207:ZT-T5",
            "NIST-SP-800-53r5:CM-3",
            "NIST-SP-800-53r5:CM-8",
            "ISO-IEC-27001-2022-AnnexA:A.5.9",
        ),
        why="The owner changed a fact the rules rely on (environment, data classification, where a secret is stored, "
        "whether a vendor holds the identity) in the direction that clears findings; a self-attested change is not "
        "evidence.",
        what_to_do="Check the change against the system itself (the secret really is in the vault, the tool really "
        "left production), then confirm it on this finding; or ask the owner to correct it.",
    )
)
