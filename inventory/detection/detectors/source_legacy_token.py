"""A legacy Kubernetes service-account token: a Secret of type kubernetes.io/service-account-token, which never
expires and is not bound to a pod, unlike the projected tokens the TokenRequest API issues."""

from inventory.detection.registry import Context, Detector, examines, register
from inventory.detection.subjects import subjects
from inventory.models import Credential


def query(ctx: Context):
    legacy = Credential.objects.filter(
        revoked_at__isnull=True, sources__legacy_token=True, sources__gone_at__isnull=True
    )
    return subjects(legacy, "credential", identity="identity_id")


DETECTOR = register(
    Detector(
        key="source_legacy_token",
        title="Legacy long-lived Kubernetes token",
        severity="medium",
        subject="credential",
        query=query,
        controls=(
            "OWASP-NHI-2025:NHI7",
            "NIST-CSF-2.0:PR.AA-01",
            "NIST-SP-800-53r5:IA-5",
            "ISO-IEC-27001-2022-AnnexA:A.5.17",
        ),
        supporting=("OWASP-NHI-2025:NHI2", "NIST-SP-800-207:ZT-T6"),
        why="Anyone who can read the Secret (a backup, a too-broad RBAC rule, a copied kubeconfig) holds the "
        "service account's access for as long as the Secret exists.",
        what_to_do="Move the workload to projected tokens (automountServiceAccountToken or TokenRequest), then delete "
        "the Secret. The kubernetes.io/legacy-token-last-used label shows whether anything still uses it.",
        examines=(examines("credential", sources__legacy_token=True),),
    )
)
