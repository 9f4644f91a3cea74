"""Workflow transitions for scope requests and grants, by sub-domain: `requests` (file, decide, cancel, renew),
`grants` (issue, revoke), `jobs` (expire, remind), `policy_settings` (auto-approval). Each transition is one
transaction that locks the row it changes and writes its audit entry; mail goes out after commit.

Callers use `from approvals import services` and the names below.
"""

from .grants import grant_may_revoke, grant_revoke
from .jobs import BATCH, JOB, grants_expire_due, grants_remind_expiring, requests_expire_stale
from .policy_settings import policy_settings_update
from .requests import (
    MIN_JUSTIFICATION_CHARS,
    MIN_JUSTIFICATION_WORDS,
    ScopeItem,
    request_cancel,
    request_decide,
    request_file,
    request_may_cancel,
    request_may_decide,
    request_may_renew,
    request_renew,
)

__all__ = [
    "BATCH",
    "JOB",
    "MIN_JUSTIFICATION_CHARS",
    "MIN_JUSTIFICATION_WORDS",
    "ScopeItem",
    "grant_may_revoke",
    "grant_revoke",
    "grants_expire_due",
    "grants_remind_expiring",
    "policy_settings_update",
    "request_cancel",
    "request_decide",
    "request_file",
    "request_may_cancel",
    "request_may_decide",
    "request_may_renew",
    "request_renew",
    "requests_expire_stale",
]
