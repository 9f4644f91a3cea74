from .audit import AppendOnlyError, AuditBatch, AuditEntry
from .events import AccessEvent, UsageWatermark
from .identities import Credential, ServiceIdentity
from .scopes import Scope, ScopeGrant
from .teams import Team
from .tools import AITool, ToolIdentity

__all__ = [
    "AITool",
    "AccessEvent",
    "AppendOnlyError",
    "AuditBatch",
    "AuditEntry",
    "Credential",
    "Scope",
    "ScopeGrant",
    "ServiceIdentity",
    "Team",
    "ToolIdentity",
    "UsageWatermark",
]
