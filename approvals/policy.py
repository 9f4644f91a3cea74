"""The approval policy, in one place: how many distinct security approvers a request needs, and how long it may last.

Rules are evaluated in order and all that match are recorded; the strictest wins. The table is
shown on the request page and tested rule by rule.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inventory.choices import DataClassification, Environment, ScopeRisk
from inventory.models import AITool, Scope

from .models import PolicySettings

# Longest grant a request may ask for, by the riskiest scope in it.
MAX_DAYS_BY_RISK = {ScopeRisk.READ: 90, ScopeRisk.WRITE: 30, ScopeRisk.ADMIN: 7}
MAX_DAYS_SENSITIVE = 30
# A pending request nobody decided on within this many days expires.
PENDING_EXPIRY_DAYS = 14
# Owners are reminded this many days before a grant expires, and may renew from then on.
REMINDER_DAYS = 7


@dataclass(frozen=True)
class Rule:
    key: str
    description: str
    required_approvals: int
    matches: Callable[[AITool, Sequence[Scope]], bool]


RULES: tuple[Rule, ...] = (
    Rule(
        "admin_scope",
        "An admin scope needs two distinct security approvers.",
        2,
        lambda tool, scopes: any(s.risk == ScopeRisk.ADMIN for s in scopes),
    ),
    Rule(
        "write_scope",
        "A write scope needs two distinct security approvers.",
        2,
        lambda tool, scopes: any(s.risk == ScopeRisk.WRITE for s in scopes),
    ),
    Rule(
        "sensitive_data",
        "A scope that reaches sensitive data needs two distinct security approvers.",
        2,
        lambda tool, scopes: any(s.sensitive for s in scopes),
    ),
    Rule(
        "prod_restricted_tool",
        "A production tool that handles restricted data needs two distinct security approvers.",
        2,
        lambda tool, scopes: (
            tool.environment == Environment.PROD and tool.data_classification == DataClassification.RESTRICTED
        ),
    ),
    Rule(
        "read_non_sensitive",
        "Read scopes on non-sensitive data need one security approver.",
        1,
        lambda tool, scopes: all(s.risk == ScopeRisk.READ and not s.sensitive for s in scopes),
    ),
)

AUTO_APPROVE_RULE = "auto_low_risk"
AUTO_APPROVE_DESCRIPTION = (
    "When switched on by security: read-only, non-sensitive scopes for a non-production tool, for at most "
    "{days} days, are approved by the policy without a person."
)


@dataclass(frozen=True)
class PolicyOutcome:
    required_approvals: int
    matched_rules: tuple[str, ...]
    max_duration_days: int
    auto_approve: bool

    @property
    def two_person(self) -> bool:
        return self.required_approvals >= 2


def max_duration_days(scopes: Sequence[Scope]) -> int:
    caps = [MAX_DAYS_BY_RISK[ScopeRisk(s.risk)] for s in scopes] or [MAX_DAYS_BY_RISK[ScopeRisk.READ]]
    if any(s.sensitive for s in scopes):
        caps.append(MAX_DAYS_SENSITIVE)
    return min(caps)


def evaluate(
    *, tool: AITool, scopes: Sequence[Scope], duration_days: int, settings: PolicySettings | None = None
) -> PolicyOutcome:
    settings = settings or PolicySettings.current()
    matched = [rule for rule in RULES if rule.matches(tool, scopes)]
    # Every non-empty set of scopes matches at least one rule: read-only non-sensitive, or something riskier.
    required = max(rule.required_approvals for rule in matched)
    low_risk = required == 1 and tool.environment != Environment.PROD
    auto = settings.auto_approve_low_risk and low_risk and duration_days <= settings.auto_approve_max_days
    return PolicyOutcome(
        required_approvals=required,
        matched_rules=tuple(rule.key for rule in matched),
        max_duration_days=max_duration_days(scopes),
        auto_approve=auto,
    )


def describe(rule_key: str) -> str:
    if rule_key == AUTO_APPROVE_RULE:
        return AUTO_APPROVE_DESCRIPTION.format(days=PolicySettings.current().auto_approve_max_days)
    return next((rule.description for rule in RULES if rule.key == rule_key), rule_key)
