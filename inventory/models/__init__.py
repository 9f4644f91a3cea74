from .audit import AppendOnlyError, AuditBatch, AuditEntry
from .events import AccessEvent, UsageWatermark
from .findings import DetectorRun, Finding, FindingStatus, Scan, Severity, SubjectType, ToolSecretMatch
from .frameworks import Attestation, Control, ControlSnapshot, Framework, PostureSnapshot
from .identities import Credential, ServiceIdentity
from .reviews import FactChange
from .scopes import Scope, ScopeGrant
from .teams import Team
from .tools import AITool, ToolIdentity

__all__ = [
    "AITool",
    "AccessEvent",
    "AppendOnlyError",
    "Attestation",
    "AuditBatch",
    "AuditEntry",
    "Control",
    "ControlSnapshot",
    "Credential",
    "DetectorRun",
    "FactChange",
    "Finding",
    "FindingStatus",
    "Framework",
    "PostureSnapshot",
    "Scan",
    "Scope",
    "ScopeGrant",
    "ServiceIdentity",
    "Severity",
    "SubjectType",
    "Team",
    "ToolIdentity",
    "ToolSecretMatch",
    "UsageWatermark",
]
