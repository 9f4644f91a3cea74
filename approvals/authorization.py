"""The pre-execution authorization decision: may this tool, acting through this identity, use this scope on this
resource for this human, now? Deny by default; every decision is recorded as an AccessEvent.

The hot path is one read (the tool with everything the rules need and the candidate grants) and one insert
(authorization_store), so a gateway can ask before every action.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from inventory.choices import GrantStatus, IdentityStatus, ToolStatus
from inventory.models import AccessEvent
from inventory.resources import is_well_formed, resource_allowed

from .authorization_store import insert_event, load_context

MAX_REF = 200
MAX_RESOURCE = 500

# Reason codes, in the order they are checked. Machine-readable and stable: gateways branch on them.
REASONS = (
    "invalid_request",
    "unknown_tool",
    "gateway_not_allowed_for_tool",
    "tool_inactive",
    "unknown_identity",
    "identity_not_bound_to_tool",
    "identity_disabled",
    "credential_revoked",
    "unknown_user",
    "user_not_allowed_for_tool",
    "unknown_scope",
    "invalid_resource",
    "no_active_grant",
    "grant_revoked",
    "grant_expired",
    "resource_outside_grant",
    "request_id_reused",
    "allowed",
)


@dataclass
class AuthorizationQuery:
    tool: Any
    identity: Any
    on_behalf_of: Any
    scope: Any
    resource: Any = ""
    request_id: Any = ""
    credential: Any = ""

    def problems(self) -> dict[str, str]:
        problems = {}
        for name in ("tool", "identity", "on_behalf_of", "scope"):
            value = getattr(self, name)
            if value in (None, "") or isinstance(value, bool) or not isinstance(value, str | int):
                problems[name] = "required: an id or a natural key"
            elif isinstance(value, str) and len(value) > MAX_REF:
                problems[name] = f"at most {MAX_REF} characters"
            elif isinstance(value, int) and not 0 < value < 2**63:
                problems[name] = "not a valid id"
        if not isinstance(self.resource, str) or len(self.resource) > MAX_RESOURCE:
            problems["resource"] = f"a string of at most {MAX_RESOURCE} characters"
        if not isinstance(self.request_id, str) or len(self.request_id) > 128:
            problems["request_id"] = "a string of at most 128 characters"
        if not isinstance(self.credential, str) or len(self.credential) > 80:
            problems["credential"] = "a credential fingerprint"
        for name in ("tool", "identity", "on_behalf_of", "scope", "resource", "request_id", "credential"):
            value = getattr(self, name)
            # Neither database can store NUL or a lone surrogate (JSON allows "\ud800"); such input is malformed,
            # not a reason to fail.
            if isinstance(value, str) and "\x00" in value:
                problems[name] = "must not contain NUL characters"
            elif isinstance(value, str) and _storable(value) != value:
                problems[name] = "must be valid Unicode text"
        return problems


@dataclass
class Decision:
    decision: str
    reason: str
    event_id: int
    grant_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    @property
    def allowed(self) -> bool:
        return self.decision == AccessEvent.Decision.ALLOW


def _storable(text: str) -> str:
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _ref(value) -> str:
    return "" if value is None else _storable(str(value))[:MAX_REF]


def _grant_reason(grants: list[dict], resource: str) -> tuple[str, int | None]:
    current = [g for g in grants if g["status"] == GrantStatus.ACTIVE and g["current"]]
    for grant in current:
        if resource_allowed(grant["resource_constraint"], resource):
            return "allowed", grant["id"]
    if current:
        return "resource_outside_grant", None
    statuses = {g["status"] for g in grants}
    if GrantStatus.ACTIVE in statuses or GrantStatus.EXPIRED in statuses:
        return "grant_expired", None
    if GrantStatus.REVOKED in statuses:
        return "grant_revoked", None
    return "no_active_grant", None


def _evaluate(query: AuthorizationQuery, token, now: datetime) -> tuple[str, int | None, dict]:
    ctx, grants = load_context(
        tool=query.tool,
        identity=query.identity,
        user=query.on_behalf_of,
        scope=query.scope,
        credential=query.credential,
        token_id=None if token is None else token.pk,
        now=now,
    )
    if ctx is None:
        return "unknown_tool", None, {}
    ids = {"tool_id": ctx["id"], "identity_id": ctx["identity_id"], "on_behalf_of_id": ctx["user_id"]}
    ids["scope_id"] = ctx["scope_id"]
    if token is not None and ctx["token_limited"] and not ctx["token_fronts"]:
        return "gateway_not_allowed_for_tool", None, ids
    if ctx["status"] == ToolStatus.RETIRED:
        return "tool_inactive", None, ids
    if ctx["identity_id"] is None:
        return "unknown_identity", None, ids
    if not ctx["bound"]:
        return "identity_not_bound_to_tool", None, ids
    if ctx["identity_status"] != IdentityStatus.ACTIVE:
        return "identity_disabled", None, ids
    if query.credential:
        if not ctx["named_credential_id"]:
            return "credential_revoked", None, ids
        ids["credential_id"] = ctx["named_credential_id"]
    if ctx["has_credential"] and not ctx["has_live_credential"]:
        return "credential_revoked", None, ids
    if ctx["user_id"] is None or not ctx["user_active"]:
        return "unknown_user", None, ids
    if not ctx["user_allowed"]:
        return "user_not_allowed_for_tool", None, ids
    if ctx["scope_id"] is None:
        return "unknown_scope", None, ids
    if query.resource and not is_well_formed(query.resource):
        return "invalid_resource", None, ids
    reason, grant_id = _grant_reason(grants, query.resource)
    return reason, grant_id, ids


def _same_request(event: dict, query: AuthorizationQuery) -> bool:
    asked = (_ref(query.tool), _ref(query.identity), _ref(query.on_behalf_of)[:150], _ref(query.scope), query.resource)
    return asked == (event["tool_ref"], event["identity_ref"], event["on_behalf_of_ref"], event["scope_ref"],
                     event["resource"])  # fmt: skip


def _replay(query: AuthorizationQuery, source: str) -> Decision | None:
    """The recorded answer to a repeated request id; a deny if the id comes back with a different question."""
    event = (
        AccessEvent.objects.filter(source=source, kind=AccessEvent.Kind.DECISION, request_id=query.request_id)
        .values(
            "id",
            "decision",
            "reason",
            "grant_id",
            "tool_ref",
            "identity_ref",
            "on_behalf_of_ref",
            "scope_ref",
            "resource",
        )
        .first()
    )
    if event is None:
        return None
    if not _same_request(event, query):
        errors = {"request_id": "already used for a different request"}
        return Decision(AccessEvent.Decision.DENY, "request_id_reused", event["id"], None, errors=errors, replayed=True)
    return Decision(event["decision"], event["reason"], event["id"], event["grant_id"], replayed=True)


def authorize(*, query: AuthorizationQuery, source: str, token=None) -> Decision:
    """Decide and record. A repeated `request_id` from the same source returns the first decision unchanged."""
    errors = query.problems()
    now = timezone.now()
    if errors:
        reason, grant_id, ids = "invalid_request", None, {}
    else:
        reason, grant_id, ids = _evaluate(query, token, now)
    decision = AccessEvent.Decision.ALLOW if reason == "allowed" else AccessEvent.Decision.DENY
    event = AccessEvent(
        occurred_at=now,
        kind=AccessEvent.Kind.DECISION,
        source=source[:150],
        request_id=_ref(query.request_id) if isinstance(query.request_id, str) and not errors else "",
        tool_ref=_ref(query.tool),
        identity_ref=_ref(query.identity),
        on_behalf_of_ref=_ref(query.on_behalf_of)[:150],
        scope_ref=_ref(query.scope),
        resource=_storable(query.resource)[:MAX_RESOURCE] if isinstance(query.resource, str) else "",
        decision=decision,
        reason=reason,
        grant_id=grant_id,
        **ids,
    )
    if insert_event(event) is None:
        # The request id was seen before (a retry, or two deliveries racing): the first recorded answer stands.
        return _replay(query, source)
    return Decision(decision, reason, event.pk, grant_id, errors=errors)
