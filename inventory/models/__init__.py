from .audit import AppendOnlyError, AuditEntry
from .identities import Credential, ServiceIdentity
from .scopes import Scope, ScopeGrant
from .teams import Team
from .tools import AITool, ToolIdentity

__all__ = [
    "AITool",
    "AppendOnlyError",
    "AuditEntry",
    "Credential",
    "Scope",
    "ScopeGrant",
    "ServiceIdentity",
    "Team",
    "ToolIdentity",
]
