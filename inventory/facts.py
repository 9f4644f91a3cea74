"""Facts the rules rely on, and which direction of change lowers risk.

An owner may correct the environment, data classification, credential storage or third-party flag of what they own,
but a change that would clear findings is self-attestation: it is kept as a FactChange and reported by the
`fact_change_unreviewed` detector until security confirms it. Changes that raise risk, and any change by security,
need no review. The change itself is audited with before and after by the service that made it.
"""

from typing import Any

from nhi_portal import roles

from .choices import CredentialStorage, DataClassification, Environment
from .models import AITool, Credential, FactChange, ServiceIdentity, SubjectType

# Higher is riskier. A change to a lower rank is the direction that clears findings.
_ENVIRONMENT = {Environment.DEV: 0, Environment.STAGING: 1, Environment.PROD: 2}
_CLASSIFICATION = {
    DataClassification.PUBLIC: 0,
    DataClassification.INTERNAL: 1,
    DataClassification.CONFIDENTIAL: 2,
    DataClassification.RESTRICTED: 3,
}
_STORAGE = {
    CredentialStorage.VAULT: 0,
    CredentialStorage.CLOUD_SECRET_MANAGER: 0,
    CredentialStorage.CI_SECRET: 1,
    CredentialStorage.ENV: 2,
    CredentialStorage.UNKNOWN: 2,
    CredentialStorage.CONNECTOR_CONFIG: 3,
    CredentialStorage.PROMPT: 3,
    CredentialStorage.REPOSITORY: 3,
}
_THIRD_PARTY = {False: 0, True: 1}

GOVERNED: dict[type, dict[str, dict]] = {
    AITool: {"environment": _ENVIRONMENT, "data_classification": _CLASSIFICATION},
    ServiceIdentity: {"environment": _ENVIRONMENT, "third_party": _THIRD_PARTY},
    Credential: {"storage": _STORAGE},
}
_SUBJECT = {AITool: SubjectType.TOOL, ServiceIdentity: SubjectType.IDENTITY, Credential: SubjectType.CREDENTIAL}


def lowered(model: type, before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """The governed fields that moved to a less risky value: {field: [before, after]}."""
    ranks = GOVERNED.get(model, {})
    return {
        name: [before[name], after[name]]
        for name, rank in ranks.items()
        if name in before and name in after and rank.get(after[name], 0) < rank.get(before[name], 0)
    }


def record_fact_changes(*, actor, obj, before: dict[str, Any], after: dict[str, Any]) -> FactChange | None:
    """Inside the caller's transaction: keep an owner's risk-lowering change for security's review."""
    if roles.is_security(actor):
        return None
    changes = lowered(type(obj), before, after)
    if not changes:
        return None
    tool = obj if isinstance(obj, AITool) else None
    identity = obj if isinstance(obj, ServiceIdentity) else getattr(obj, "identity", None)
    return FactChange.objects.create(
        subject_type=_SUBJECT[type(obj)],
        subject_id=obj.pk,
        tool=tool,
        identity=identity,
        changes=changes,
        changed_by=actor,
    )
