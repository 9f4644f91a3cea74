"""Authorize in plain Python: the readable specification of the decision statement (`authorization_store`).

`decide_reference(world, question)` answers what `authorization_store.decision_sql` answers for the same facts, rule
by rule in the same order as `authorization_store.rules`: the first rule that holds gives the reason, and only
`allowed` allows, with the oldest grant that matches. The statement exists for speed (one round trip per decision);
this module is where the rules are read. tests/approvals/test_authorize_reference.py holds the two equal over
generated worlds for every reason code: a rule changed on one side only fails it.

The question is one that passed authorize's input checks (`AuthorizationQuery.problems`), so the reasons decided
before the statement runs (`invalid_request`, `request_id_reused`) are not here.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model

from inventory.choices import GrantStatus, IdentityStatus, ToolStatus
from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity
from inventory.resources import canonical_resource, resource_allowed

from .models import GatewayToolLimit
from .policy import grant_below_policy, grant_unapproved


@dataclass(frozen=True)
class Question:
    """What a gateway asks. Each reference is an id (int) or a natural key (str: slug, name, username, scope name),
    even a str that looks like a number. `resource` is as sent; `token` is the asking token's key (its pk), None
    for a session."""

    tool: int | str
    identity: int | str
    user: int | str
    scope: int | str
    resource: str = ""
    credential: str = ""
    token: str | None = None
    # A tool listing's question: could any resource be allowed? Every current grant covers it (`question_sql`).
    any_resource: bool = False


@dataclass(frozen=True)
class Outcome:
    reason: str
    grant: int | None = None

    @property
    def allowed(self) -> bool:
        return self.reason == "allowed"


@dataclass
class World:
    """The facts a decision reads, as Python objects. Rows need only the attributes the rules read: tools `pk`,
    `slug`, `status`, `environment`, `data_classification`; identities `pk`, `name`, `status`,
    `compromised_at`; users `pk`,
    `username`, `is_active`; scopes `pk`, `name`, `risk`, `sensitive`; credentials `pk`, `identity_id`,
    `fingerprint`, `revoked_at`, `expires_at`; grants ScopeGrant's columns."""

    now: datetime
    tools: list = field(default_factory=list)
    identities: list = field(default_factory=list)
    users: list = field(default_factory=list)
    scopes: list = field(default_factory=list)
    credentials: list = field(default_factory=list)
    grants: list = field(default_factory=list)
    bindings: set[tuple[int, int]] = field(default_factory=set)  # (tool, identity)
    allowed_users: set[tuple[int, int]] = field(default_factory=set)  # (tool, user)
    allowed_teams: set[tuple[int, int]] = field(default_factory=set)  # (tool, team)
    members: set[tuple[int, int]] = field(default_factory=set)  # (team, user)
    # A token with an entry may ask only about the tools listed; a token without one, about any tool.
    token_limits: dict[str, set[int]] = field(default_factory=dict)

    @classmethod
    def from_database(cls, now: datetime) -> "World":
        """Everything, read through the ORM (never through the statement under test). For small worlds: tests."""
        allowed_users, allowed_teams = AITool.allowed_users.through, AITool.allowed_teams.through
        limits: dict[str, set[int]] = {limit.token_id: set() for limit in GatewayToolLimit.objects.all()}
        for token, tool in GatewayToolLimit.tools.through.objects.values_list("gatewaytoollimit__token", "aitool"):
            limits[token].add(tool)
        return cls(
            now=now,
            tools=list(AITool.objects.all()),
            identities=list(ServiceIdentity.objects.all()),
            users=list(get_user_model().objects.all()),
            scopes=list(Scope.objects.all()),
            credentials=list(Credential.objects.all()),
            grants=list(ScopeGrant.objects.all()),
            bindings=set(ToolIdentity.objects.values_list("tool", "identity")),
            allowed_users=set(allowed_users.objects.values_list("aitool", "user")),
            allowed_teams=set(allowed_teams.objects.values_list("aitool", "team")),
            members=set(Team.members.through.objects.values_list("team", "user")),
            token_limits=limits,
        )


def _find(rows: list, ref: int | str, natural: str):
    """An int is an id; a str is a natural key, even when it looks like a number."""
    if isinstance(ref, int):
        return next((row for row in rows if row.pk == ref), None)
    return next((row for row in rows if getattr(row, natural) == ref), None)


def _live(credential, now: datetime) -> bool:
    return credential.revoked_at is None and (credential.expires_at is None or credential.expires_at > now)


def _named(credential, named: str) -> bool:
    """Gateways name a credential by id (digits, as gateways cannot compute the keyed fingerprint) or fingerprint."""
    if named.isascii() and named.isdigit() and len(named) < 19:
        return credential.pk == int(named)
    return credential.fingerprint == named


def _may_act_for(world: World, tool, user) -> bool:
    """The human is one of the tool's allowed users, or a member of one of its allowed teams."""
    teams = {team for tool_id, team in world.allowed_teams if tool_id == tool.pk}
    return (tool.pk, user.pk) in world.allowed_users or any((team, user.pk) in world.members for team in teams)


def _current(grant, now: datetime) -> bool:
    return grant.status == GrantStatus.ACTIVE and (grant.expires_at is None or grant.expires_at > now)


def decide_reference(world: World, question: Question) -> Outcome:
    """The reason code (and, when allowed, the grant) for this question in this world. Deny by default."""
    now = world.now
    tool = _find(world.tools, question.tool, "slug")
    if tool is None:
        return Outcome("unknown_tool")
    limit = world.token_limits.get(question.token) if question.token is not None else None
    if limit is not None and tool.pk not in limit:
        return Outcome("gateway_not_allowed_for_tool")
    if tool.status == ToolStatus.RETIRED:
        return Outcome("tool_inactive")
    identity = _find(world.identities, question.identity, "name")
    if identity is None:
        return Outcome("unknown_identity")
    if (tool.pk, identity.pk) not in world.bindings:
        return Outcome("identity_not_bound_to_tool")
    if identity.status != IdentityStatus.ACTIVE:
        return Outcome("identity_disabled")
    # Contained: a credential of the identity was exposed. Nothing through it is allowed until the marker is cleared
    # (a credential registered since is live and every compromised one revoked: inventory.compromise).
    if identity.compromised_at is not None:
        return Outcome("credential_compromised")
    credentials = [c for c in world.credentials if c.identity_id == identity.pk]
    if question.credential and not any(_live(c, now) and _named(c, question.credential) for c in credentials):
        return Outcome("credential_revoked")
    # An identity with no credentials on record (federated, say) has none revoked; one whose every credential is
    # revoked or expired does.
    if credentials and not any(_live(c, now) for c in credentials):
        return Outcome("credential_revoked")
    user = _find(world.users, question.user, "username")
    if user is None or not user.is_active:
        return Outcome("unknown_user")
    if not _may_act_for(world, tool, user):
        return Outcome("user_not_allowed_for_tool")
    scope = _find(world.scopes, question.scope, "name")
    if scope is None:
        return Outcome("unknown_scope")
    if question.resource and canonical_resource(question.resource) is None:
        return Outcome("invalid_resource")

    # The candidate grants: this identity and scope, for this tool or for any tool.
    candidates = [
        g
        for g in world.grants
        if g.identity_id == identity.pk and g.scope_id == scope.pk and g.tool_id in (None, tool.pk)
    ]
    current = [g for g in candidates if _current(g, now)]
    covering = [
        g for g in current if question.any_resource or resource_allowed(g.resource_constraint, question.resource)
    ]
    meeting_policy = [
        g
        for g in covering
        if not grant_below_policy(approvals=g.approvals, by_policy=g.approved_by_policy, scope=scope, tool=tool)
    ]
    if meeting_policy:
        # The oldest, so that the same question gets the same grant every time.
        return Outcome("allowed", min(g.pk for g in meeting_policy))
    if any(grant_unapproved(approvals=g.approvals, by_policy=g.approved_by_policy) for g in covering):
        return Outcome("grant_unapproved")
    if covering:
        return Outcome("grant_below_policy")
    if current:
        return Outcome("resource_outside_grant")
    if any(g.status in (GrantStatus.ACTIVE, GrantStatus.EXPIRED) for g in candidates):
        return Outcome("grant_expired")
    if any(g.status == GrantStatus.REVOKED for g in candidates):
        return Outcome("grant_revoked")
    return Outcome("no_active_grant")
