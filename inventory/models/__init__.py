from .alerts import AlertDelivery, DetectionChange, DetectionSchedule  # alerting (issue 18)
from .audit import (
    AppendOnlyError,
    ArchivedPartition,
    AuditArchive,
    AuditBatch,
    AuditCheckpoint,
    AuditEntry,
    AuditVerification,
    ExportCursor,
)
from .discovery import AIToolSuggestion, SourceObject, SourceRun  # discovery (issue 14)
from .events import AccessEvent, UsageWatermark
from .findings import DetectorRun, Finding, FindingStatus, Scan, Severity, SubjectType, ToolSecretMatch
from .frameworks import Attestation, Control, ControlSnapshot, Framework, FrameworkSnapshot, PostureSnapshot
from .identities import Credential, ServiceIdentity
from .reviews import FactChange
from .scopes import Scope, ScopeGrant
from .teams import Team
from .tools import AITool, ToolIdentity

__all__ = [
    "AITool",
    "AIToolSuggestion",
    "AccessEvent",
    "AlertDelivery",
    "AppendOnlyError",
    "ArchivedPartition",
    "Attestation",
    "AuditArchive",
    "AuditBatch",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditVerification",
    "Control",
    "ControlSnapshot",
    "Credential",
    "DetectionChange",
    "DetectionSchedule",
    "DetectorRun",
    "ExportCursor",
    "FactChange",
    "Finding",
    "FindingStatus",
    "Framework",
    "FrameworkSnapshot",
    "PostureSnapshot",
    "Scan",
    "Scope",
    "ScopeGrant",
    "ServiceIdentity",
    "Severity",
    "SourceObject",
    "SourceRun",
    "SubjectType",
    "Team",
    "ToolIdentity",
    "ToolSecretMatch",
    "UsageWatermark",
]
