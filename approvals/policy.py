"""The approval policy, in one place: how many distinct security approvers a request needs, and how long it may last.

Rules are evaluated in order and all that match are recorded; the strictest wins. The table is
shown on the request page and tested rule by rule.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db.models import Q

from inventory.choices import DataClassification, Environment, ScopeRisk
from inventory.models import AITool, Scope, ScopeGrant
from nhi_portal.sql import column, literal

from .models import PolicySettings

# The policy's numbers, here only: forms, services, pages and messages read them from here.
# Longest grant a request may ask for, by the riskiest scope in it.
MAX_DAYS_BY_RISK = {ScopeRisk.READ: 90, ScopeRisk.WRITE: 30, ScopeRisk.ADMIN: 7}
MAX_DAYS_SENSITIVE = 30
# No request lasts longer than its least risky scope allows.
LONGEST_GRANT_DAYS = max(MAX_DAYS_BY_RISK.values())
# What the request form suggests.
DEFAULT_DURATION_DAYS = 30
# Auto-approval covers read-only requests, so at most as long as a read grant may last.
AUTO_APPROVE_MAX_DAYS_LIMIT = MAX_DAYS_BY_RISK[ScopeRisk.READ]
# A pending request nobody decided on within this many days expires.
PENDING_EXPIRY_DAYS = 14
# Owners are reminded this many days before a grant expires, and may renew from then on.
REMINDER_DAYS = 7


def duration_caps_text() -> str:
    """The caps in words, longest first: "90 days for read, 30 for write or sensitive data, 7 for admin"."""
    by_days: dict[int, list[str]] = {}
    for risk, days in MAX_DAYS_BY_RISK.items():
        by_days.setdefault(days, []).append(ScopeRisk(risk).label.lower())
    by_days.setdefault(MAX_DAYS_SENSITIVE, []).append("sensitive data")
    first, *rest = [f"{days} for {' or '.join(labels)}" for days, labels in sorted(by_days.items(), reverse=True)]
    return ", ".join([first.replace(" for ", " days for ", 1), *rest])


@dataclass(frozen=True)
class Rule:
    """A policy rule. The strict rules are declared as data, `scope` (some scope in the request has all of these
    values) and `tool` (the tool has all of these), so that the same rule can be read in Python at filing time and in
    SQL at decision time (`grant_below_policy_sql`), with nothing to keep in step by hand."""

    key: str
    description: str
    required_approvals: int
    scope: dict = field(default_factory=dict)
    tool: dict = field(default_factory=dict)
    custom: Callable[[AITool, Sequence[Scope]], bool] | None = None

    def matches(self, tool: AITool, scopes: Sequence[Scope]) -> bool:
        if self.custom is not None:
            return self.custom(tool, scopes)
        tool_holds = all(getattr(tool, name) == value for name, value in self.tool.items())
        scope_holds = not self.scope or any(
            all(getattr(scope, name) == value for name, value in self.scope.items()) for scope in scopes
        )
        return tool_holds and scope_holds


RULES: tuple[Rule, ...] = (
    Rule(
        "admin_scope",
        "An admin scope needs two distinct security approvers.",
        2,
        scope={"risk": ScopeRisk.ADMIN},
    ),
    Rule(
        "write_scope",
        "A write scope needs two distinct security approvers.",
        2,
        scope={"risk": ScopeRisk.WRITE},
    ),
    Rule(
        "sensitive_data",
        "A scope that reaches sensitive data needs two distinct security approvers.",
        2,
        scope={"sensitive": True},
    ),
    Rule(
        "prod_restricted_tool",
        "A production tool that handles restricted data needs two distinct security approvers.",
        2,
        tool={"environment": Environment.PROD, "data_classification": DataClassification.RESTRICTED},
    ),
    Rule(
        "read_non_sensitive",
        "Read scopes on non-sensitive data need one security approver.",
        1,
        custom=lambda tool, scopes: all(s.risk == ScopeRisk.READ and not s.sensitive for s in scopes),
    ),
)
STRICT_RULES = tuple(rule for rule in RULES if rule.required_approvals == 2)
if any(rule.custom for rule in STRICT_RULES):  # pragma: no cover - a guard on the table above
    raise RuntimeError("strict rules must be declared as data: they are also compiled to SQL")

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


# A grant carries the approval it was issued under (ScopeGrant.approvals, .approved_by_policy). At decision time the
# policy is applied to the grant's scope and the acting tool *as they are now*; a grant that no longer meets it stops
# allowing (`grant_below_policy`) until it is approved again. Three forms of one rule: Python (the readable
# reference), SQL (authorize) and the ORM (the grant_unapproved detector); tests/approvals/test_grant_policy.py holds
# them equal over generated data.


def grant_unapproved(*, approvals: int, by_policy: bool) -> bool:
    """Nobody approved it: observed at a source (import) or written outside the workflow."""
    return approvals == 0 and not by_policy


def grant_below_policy(*, approvals: int, by_policy: bool, scope: Scope, tool: AITool) -> bool:
    """Python reference: the grant's approval no longer satisfies the policy for this scope and tool."""
    required = 2 if any(rule.matches(tool, [scope]) for rule in STRICT_RULES) else 1
    auto_allowed = by_policy and required == 1 and tool.environment != Environment.PROD
    return approvals < required and not auto_allowed


def _sql_all(alias: str, model, values: dict) -> str:
    return " AND ".join(f"{alias}.{column(model, name)} = {literal(value)}" for name, value in values.items())


def requires_two_sql(*, scope: str, tool: str) -> str:
    """SQL: the strict rules hold for this scope row and tool row (aliases), i.e. two approvers are required."""
    return " OR ".join(
        "(" + " AND ".join(filter(None, [_sql_all(scope, Scope, rule.scope), _sql_all(tool, AITool, rule.tool)])) + ")"
        for rule in STRICT_RULES
    )


def production_sql(*, tool: str) -> str:
    return _sql_all(tool, AITool, {"environment": Environment.PROD})


def grant_below_policy_sql(*, grant: str, requires_two: str, production: str) -> str:
    """SQL for `grant_below_policy` over a grant row's alias, given `requires_two_sql` and `production_sql` (or
    columns holding them, computed once per decision)."""
    approvals = f"{grant}.{column(ScopeGrant, 'approvals')}"
    by_policy = f"{grant}.{column(ScopeGrant, 'approved_by_policy')}"
    return f"(({requires_two}) AND {approvals} < 2) OR ({approvals} = 0 AND (NOT {by_policy} OR {production}))"


def grant_unapproved_sql(*, grant: str) -> str:
    approvals = f"{grant}.{column(ScopeGrant, 'approvals')}"
    return f"{approvals} = 0 AND NOT {grant}.{column(ScopeGrant, 'approved_by_policy')}"


def grant_below_policy_q(*, scope: str, tool: str) -> Q:
    """The ORM form of `grant_below_policy` for a ScopeGrant queryset; `scope` and `tool` are lookup prefixes."""
    strict = Q()
    for rule in STRICT_RULES:
        holds = Q(**{f"{scope}{name}": value for name, value in rule.scope.items()})
        holds &= Q(**{f"{tool}{name}": value for name, value in rule.tool.items()})
        strict |= holds
    prod = Q(**{f"{tool}environment": Environment.PROD})
    return (strict & Q(approvals__lt=2)) | (Q(approvals=0) & (Q(approved_by_policy=False) | prod))
