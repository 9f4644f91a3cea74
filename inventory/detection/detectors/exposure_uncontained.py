"""An exposed secret still not contained an hour after its finding opened (issue 18): the evidence for incident
response. Exposed cloud keys are used within minutes; a finding nobody contained is an incident nobody handled.

It reads the exposure detectors' findings: open (or acknowledged) and not contained (inventory.detection.containment)
past the threshold. Containing them, or the exposure resolving, clears it at the next run over the subject.
"""

from datetime import timedelta

from django.db.models import Q

from inventory.detection.registry import Context, Detector, register
from inventory.detection.subjects import subjects
from inventory.models import AITool, Credential, Finding, FindingStatus

EXPOSURES = ("secret_exposed", "secret_in_prompt", "source_key_exposed")


def query(ctx: Context):
    cutoff = ctx.now - timedelta(minutes=ctx.days("exposure_contain_minutes"))
    opened_before = Q(opened_at__lte=cutoff) | Q(opened_at__isnull=True, first_seen_at__lte=cutoff)
    waiting = Finding.objects.filter(
        opened_before,
        detector__in=EXPOSURES,
        contained_at__isnull=True,
        status__in=(FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED),
    )
    credentials = Credential.objects.filter(pk__in=waiting.filter(subject_type="credential").values("subject_id"))
    tools = AITool.objects.filter(pk__in=waiting.filter(subject_type="tool").values("subject_id"))
    return [
        subjects(credentials, "credential", identity="identity_id"),
        subjects(tools, "tool", identity=None, tool="pk"),
    ]


DETECTOR = register(
    Detector(
        key="exposure_uncontained",
        title="Exposed secret not contained within the hour",
        severity="high",
        subject="credential",
        query=query,
        # Primary: incident response. Its findings fail these; its clean, current run passes them.
        controls=(
            "NIST-CSF-2.0:RS.MA-01",
            "NIST-CSF-2.0:RS.MI-01",
            "NIST-SP-800-53r5:IR-4",
            "ISO-IEC-27001-2022-AnnexA:A.5.26",
        ),
        why="Exposed keys are used within minutes of exposure. An exposure still open and uncontained after an hour "
        "is an incident nobody is handling.",
        what_to_do="Press Contain on the exposure's finding (authorize then refuses every call through the identity), "
        "register a replacement credential and revoke the exposed one.",
        thresholds={"exposure_contain_minutes": 60},
        depends_on=("credential", "tool.prompt_templates", "tool.connector_config", "source"),
    )
)
