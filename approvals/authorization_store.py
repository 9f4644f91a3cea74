"""One statement per decision: read what the rules need, apply them in order, insert the AccessEvent, return it.

`/api/v1/authorize/` sits in front of every AI action, so its cost is paid per action. Read, decide in Python,
then insert took two round trips; one statement (with the token lookup's converters cached and the statement
short enough for psycopg's parse cache) took two cores from 814 to about 950 decisions a second and the median
from 2.26 to 1.95 ms (bench/authorize.py, same hour). Here the rules are a table of
(reason, condition) pairs, first match wins, compiled into a CASE inside `WITH ... INSERT ... SELECT ... RETURNING`,
so a decision is one round trip and one commit.

The SQL is generated once per query shape from the models' own table and column names, so a renamed field breaks
loudly when the statement is built rather than silently at run time, and each call only binds parameters.
PostgreSQL and SQLite both run it; only the resource pattern match differs (LIKE against GLOB, both
case-sensitive), and tests/approvals/test_resource_patterns_sql.py holds each to `inventory.resources`.

The rules in plain Python, the readable specification of this statement: `approvals.authorization_reference.
decide_reference`; tests/approvals/test_authorize_reference.py holds the two equal for every reason code.
"""

import re
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from inventory.choices import GrantStatus, IdentityStatus, ToolStatus
from inventory.models import AccessEvent, AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity
from nhi_portal.sql import column, datetime_param, literal, table

from . import policy
from .models import GatewayToolLimit

User = get_user_model()

ALLOWED = "allowed"
NO_ACTIVE_GRANT = "no_active_grant"
# The event columns a decision leaves NULL: they belong to observed usage and to tool listings.
NOT_DECIDED = frozenset({"decision_event", "outcome", "duration_ms", "detail"})


def rules(*, credential_named: bool, token: bool) -> list[tuple[str, str]]:
    """(reason, condition), checked in order; the first that holds is the answer, and `no_active_grant` if none.

    Conditions read the `c` row (the tool, identity, human and scope asked about, with facts about them) and the
    `g` row (the candidate grants, aggregated). Only `allowed` allows, and only with a matched grant.
    Python reference: `approvals.authorization_reference.decide_reference`, rule for rule in this order.
    """
    checks = [("unknown_tool", "c.tid IS NULL")]
    if token:
        checks.append(("gateway_not_allowed_for_tool", "c.refused"))
    checks += [
        ("tool_inactive", f"c.tstat = {literal(ToolStatus.RETIRED)}"),
        ("unknown_identity", "c.iid IS NULL"),
        ("identity_not_bound_to_tool", "NOT c.bound"),
        ("identity_disabled", f"c.istat <> {literal(IdentityStatus.ACTIVE)}"),
        # Contained (inventory.compromise): every call through the identity is refused until a new credential is
        # registered and the compromised one revoked, which clears the marker.
        ("credential_compromised", "c.cmp IS NOT NULL"),
    ]
    if credential_named:
        checks.append(("credential_revoked", "c.ncid IS NULL"))
    checks += [
        # NULL: the identity has no credentials on record at all (federated, say), which is not a revoked one.
        ("credential_revoked", "COALESCE(c.lc, 1) = 0"),
        ("unknown_user", "c.uid IS NULL OR NOT c.uact"),
        ("user_not_allowed_for_tool", "NOT c.usable"),
        ("unknown_scope", "c.sid IS NULL"),
        ("invalid_resource", "NOT %(resource_ok)s"),
        (ALLOWED, "g.granted IS NOT NULL"),
        # A grant covers the request but nobody approved it (observed by an import), or its approval is below the
        # policy for the tool as it is now: both wait for an approval, and say so.
        ("grant_unapproved", "g.unapproved > 0"),
        ("grant_below_policy", "g.covering > 0"),
        ("resource_outside_grant", "g.live > 0"),
        ("grant_expired", "g.lapsed > 0"),
        ("grant_revoked", "g.revoked > 0"),
    ]
    return checks


def _fail_closed(reason: str, condition: str) -> str:
    """A condition that comes out NULL (unknown) denies, and only a plain TRUE allows. A bare NULL test is never
    NULL itself and stays as written (the statement must stay short, see `decision_sql`)."""
    if re.fullmatch(r"[\w.]+ IS (NOT )?NULL", condition):
        return condition
    return f"({condition}) {'IS TRUE' if reason == ALLOWED else 'IS NOT FALSE'}"


def _grant(name: str) -> str:
    """A column of the candidate grant (`sg`)."""
    return f"sg.{column(ScopeGrant, name)}"


def _cred(name: str) -> str:
    """A column of a credential of the identity asked about (`cr`)."""
    return f"cr.{column(Credential, name)}"


def _key(model, by_id: bool, natural: str) -> str:
    """Ints are ids; strings are natural keys, even when they look like numbers: no ambiguity."""
    return column(model, "id" if by_id else natural)


def resource_matches(constraint: str, vendor: str) -> str:
    """SQL for `inventory.resources.resource_allowed(constraint, %(resource)s)`, for a well-formed resource (the
    rules refuse any other first): an empty constraint allows anything, and `*` matches any run of characters."""
    return f"({constraint} = '' OR (%(resource)s <> '' AND {_pattern_match(constraint, vendor)}))"


def _pattern_match(constraint: str, vendor: str) -> str:
    if vendor == "sqlite":
        # GLOB is case-sensitive (SQLite's LIKE is not); `[` and `?` are its only other special characters.
        return f"%(resource)s GLOB replace(replace({constraint}, '[', '[[]'), '?', '[?]')"
    # `!` escapes LIKE's own wildcards (and itself): no backslash, so nothing depends on standard_conforming_strings.
    escaped = f"replace(replace(replace({constraint}, '!', '!!'), '%%', '!%%'), '_', '!_')"
    return f"%(resource)s LIKE replace({escaped}, '*', '%%') ESCAPE '!'"


def _context_columns(credential: str, token: bool) -> list[str]:
    """The `c` row: what was asked about, resolved, and the facts the rules test."""
    binding, credentials = table(ToolIdentity), table(Credential)
    allowed_users, allowed_teams = AITool.allowed_users.through, AITool.allowed_teams.through
    members = Team.members.through
    tool_id, identity_id = f"t.{column(AITool, 'id')}", f"i.{column(ServiceIdentity, 'id')}"
    user_id = f"u.{column(User, 'id')}"
    live = f"{_cred('revoked_at')} IS NULL AND ({_cred('expires_at')} IS NULL OR {_cred('expires_at')} > %(now)s)"
    columns = [
        f"{tool_id} AS tid",
        f"t.{column(AITool, 'status')} AS tstat",
        f"{identity_id} AS iid",
        f"i.{column(ServiceIdentity, 'status')} AS istat",
        f"i.{column(ServiceIdentity, 'compromised_at')} AS cmp",
        f"{user_id} AS uid",
        f"u.{column(User, 'is_active')} AS uact",
        f"s.{column(Scope, 'id')} AS sid",
        # The policy facts of this scope and tool as they are now, for every candidate grant's approval check.
        f"({policy.requires_two_sql(scope='s', tool='t')}) AS two",
        f"({policy.production_sql(tool='t')}) AS prod",
        f"""EXISTS (SELECT 1 FROM {binding} b WHERE b.{column(ToolIdentity, "tool")} = {tool_id}
                    AND b.{column(ToolIdentity, "identity")} = {identity_id}) AS bound""",
        f"""(SELECT MAX(CASE WHEN {live} THEN 1 ELSE 0 END) FROM {credentials} cr
             WHERE {_cred("identity")} = {identity_id}) AS lc""",
        f"""(EXISTS (SELECT 1 FROM {table(allowed_users)} au
                     WHERE au.{column(allowed_users, "aitool")} = {tool_id}
                     AND au.{column(allowed_users, "user")} = {user_id})
             OR EXISTS (SELECT 1 FROM {table(allowed_teams)} at
                        JOIN {table(members)} m ON m.{column(members, "team")} = at.{column(allowed_teams, "team")}
                        WHERE at.{column(allowed_teams, "aitool")} = {tool_id}
                        AND m.{column(members, "user")} = {user_id})) AS usable""",
    ]
    if credential:
        # Gateways name the credential by id (they cannot compute the keyed fingerprint) or by fingerprint.
        named = _cred("id") if credential == "id" else _cred("fingerprint")
        columns.append(
            f"""(SELECT {_cred("id")} FROM {credentials} cr WHERE {_cred("identity")} = {identity_id}
                 AND {live} AND {named} = %(credential)s) AS ncid"""
        )
    if token:
        # A token without a limit may ask about any tool; a limited one only about the tools it fronts.
        fronted = GatewayToolLimit.tools.through
        columns.append(
            f"""EXISTS (SELECT 1 FROM {table(GatewayToolLimit)} l
                WHERE l.{column(GatewayToolLimit, "token")} = %(token)s
                AND NOT EXISTS (SELECT 1 FROM {table(fronted)} lt
                    WHERE lt.{column(fronted, "gatewaytoollimit")} = l.{column(GatewayToolLimit, "id")}
                    AND lt.{column(fronted, "aitool")} = {tool_id})) AS refused"""
        )
    return columns


def _grant_rows(vendor: str, any_resource: bool = False) -> str:
    """Each candidate grant (this identity and scope, for this tool or any tool) with its facts, computed once.
    `any_resource`: the question names no resource (a listing: may the human call this at all?), so every grant
    covers it."""
    active, expires = f"{_grant('status')} = {literal(GrantStatus.ACTIVE)}", _grant("expires_at")
    current = f"{active} AND ({expires} IS NULL OR {expires} > %(now)s)"
    below = policy.grant_below_policy_sql(grant="sg", requires_two="c.two", production="c.prod")
    facts = {
        "id": _grant("id"),
        "st": _grant("status"),
        "cur": current,
        "hit": "TRUE" if any_resource else resource_matches(_grant("resource_constraint"), vendor),
        "low": below,
        "bare": policy.grant_unapproved_sql(grant="sg"),
    }
    return (
        f"SELECT {', '.join(f'{_bare(expr)} AS {name}' for name, expr in facts.items())} FROM c "
        f"JOIN {table(ScopeGrant)} sg ON {_grant('identity')} = c.iid AND {_grant('scope')} = c.sid "
        f"AND ({_grant('tool')} = c.tid OR {_grant('tool')} IS NULL)"
    )


def _bare(expr: str) -> str:
    return expr if re.fullmatch(r"[\w.]+", expr) else f"({expr})"


def _grant_columns() -> list[str]:
    """The `g` row: the candidate grants (`x`), aggregated. A NULL fact never allows: `x.low` unknown keeps the grant
    from matching."""
    return [
        # The oldest matching grant answers, so the same question gets the same grant every time.
        "MIN(CASE WHEN x.cur AND x.hit AND NOT x.low THEN x.id END) AS granted",
        "COUNT(CASE WHEN x.cur AND x.hit AND x.bare THEN 1 END) AS unapproved",
        "COUNT(CASE WHEN x.cur AND x.hit THEN 1 END) AS covering",
        "COUNT(CASE WHEN x.cur THEN 1 END) AS live",
        f"COUNT(CASE WHEN x.st IN ({literal(GrantStatus.ACTIVE)}, {literal(GrantStatus.EXPIRED)}) THEN 1 END) "
        "AS lapsed",
        f"COUNT(CASE WHEN x.st = {literal(GrantStatus.REVOKED)} THEN 1 END) AS revoked",
    ]


def _decision_ctes(vendor, tool_by_id, identity_by_id, user_by_id, scope_by_id, credential, token, any_resource=False):
    """`WITH c, g, d`: the question resolved (`c`), its candidate grants (`g`) and the answer (`d.reason`).

    Natural keys are unique columns, so each LEFT JOIN from the one-row `asked` matches at most one row: `c` is
    exactly one row whatever was asked, and `g`, an aggregate without GROUP BY, is too.
    """
    cases = " ".join(
        f"WHEN {_fail_closed(reason, condition)} THEN {literal(reason)}"
        for reason, condition in rules(credential_named=bool(credential), token=token)
    )
    return f"""
        WITH c AS (
            SELECT {", ".join(_context_columns(credential, token))}
            FROM (SELECT 1) q
            LEFT JOIN {table(AITool)} t ON t.{_key(AITool, tool_by_id, "slug")} = %(tool)s
            LEFT JOIN {table(ServiceIdentity)} i ON i.{_key(ServiceIdentity, identity_by_id, "name")} = %(identity)s
            LEFT JOIN {table(User)} u ON u.{_key(User, user_by_id, "username")} = %(user)s
            LEFT JOIN {table(Scope)} s ON s.{_key(Scope, scope_by_id, "name")} = %(scope)s
        ),
        g AS (SELECT {", ".join(_grant_columns())} FROM ({_grant_rows(vendor, any_resource)}) x),
        d AS (
            SELECT c.*, g.granted, CASE {cases} ELSE {literal(NO_ACTIVE_GRANT)} END AS reason
            FROM c CROSS JOIN g
        )
    """


def _one_line(sql: str) -> str:
    # One line: psycopg caches how it parses a statement's placeholders only up to 4 KB of text (parsing this one
    # afresh cost 40 us a call); tests/approvals/test_authorize.py holds the common shapes to that. No literal here
    # holds a space, a comma or a comparison, so nothing but layout changes.
    return " ".join(sql.split()).replace(" = ", "=").replace(", ", ",").replace(" > ", ">").replace(" <> ", "<>")


@cache
def decision_sql(
    vendor: str,
    tool_by_id: bool,
    identity_by_id: bool,
    user_by_id: bool,
    scope_by_id: bool,
    credential: str,
    token: bool,
) -> str:
    """`credential` is "" (none named), "id" or "fingerprint"; `vendor` is the database's (the match differs)."""
    allowed = f"d.reason = {literal(ALLOWED)}"
    allow, deny = literal(AccessEvent.Decision.ALLOW), literal(AccessEvent.Decision.DENY)
    values = {
        "occurred_at": "%(now)s",
        "recorded_at": "%(now)s",
        "kind": literal(AccessEvent.Kind.DECISION),
        "source": "%(source)s",
        "request_id": "%(request_id)s",
        "tool_ref": "%(tool_ref)s",
        "identity_ref": "%(identity_ref)s",
        "on_behalf_of_ref": "%(on_behalf_of_ref)s",
        "scope_ref": "%(scope_ref)s",
        "resource": "%(resource)s",
        "decision": f"CASE WHEN {allowed} THEN {allow} ELSE {deny} END",
        "reason": "d.reason",
        "grant": f"CASE WHEN {allowed} THEN d.granted END",
        "tool": "d.tid",
        "identity": "d.iid",
        "on_behalf_of": "d.uid",
        "scope": "d.sid",
        "credential": "d.ncid" if credential else "NULL",
        "agent": "%(agent)s",
        "action": "%(action)s",
    }
    fields = {f.name for f in AccessEvent._meta.concrete_fields if not f.primary_key} - NOT_DECIDED
    if set(values) != fields:
        raise RuntimeError(f"the decision insert does not cover AccessEvent: {sorted(set(values) ^ fields)}")
    # A repeated request id inserts nothing and returns no row. No conflict target: on PostgreSQL the events are
    # partitioned by month (inventory/audit/partitions.py) and the request-id constraint is each partition's own unique
    # index, which only an untargeted ON CONFLICT sees; a decision can break no other unique constraint (the one on
    # decision_event concerns usage rows, and ids come from the sequence). `WHERE 1 = 1` is SQLite's: without a WHERE
    # it reads ON CONFLICT as the ON of a join.
    returning = ", ".join(column(AccessEvent, name) for name in ("id", "decision", "reason", "grant"))
    sql = f"""
        {_decision_ctes(vendor, tool_by_id, identity_by_id, user_by_id, scope_by_id, credential, token)}
        INSERT INTO {table(AccessEvent)} ({", ".join(column(AccessEvent, name) for name in values)})
        SELECT {", ".join(values.values())} FROM d WHERE 1 = 1
        ON CONFLICT DO NOTHING
        RETURNING {returning}
    """
    return _one_line(sql)


@cache
def question_sql(vendor: str, tool_by_id: bool, identity_by_id: bool, user_by_id: bool, scope_by_id: bool,
                 token: bool, any_resource: bool) -> str:  # fmt: skip
    """The same rules as `decision_sql`, answered without recording: (reason, grant, tool, identity, user) for one
    scope and resource. A tool listing asks it once per tool it may show and records one event itself."""
    ctes = _decision_ctes(vendor, tool_by_id, identity_by_id, user_by_id, scope_by_id, "", token, any_resource)
    return _one_line(f"{ctes} SELECT d.reason, d.granted, d.tid, d.iid, d.uid FROM d")


def decide_and_record(
    *,
    tool,
    identity,
    user,
    scope,
    resource: str,
    resource_ok: bool,
    credential: str,
    token_id,
    source: str,
    request_id: str,
    refs: dict[str, str],
    context: dict[str, str | None],
    now,
) -> tuple[int, str, str, int | None] | None:
    """Decide, record, and return (event id, decision, reason, grant id); None if the request id was recorded
    before (nothing is written). One round trip, in autocommit and inside a transaction alike: a conflict is not
    an error, so no savepoint."""
    credential_by = ""
    if credential:
        by_id = credential.isascii() and credential.isdigit() and len(credential) < 19
        credential_by = "id" if by_id else "fingerprint"
    sql = decision_sql(
        connection.vendor,
        isinstance(tool, int),
        isinstance(identity, int),
        isinstance(user, int),
        isinstance(scope, int),
        credential_by,
        token_id is not None,
    )
    params = {
        "tool": tool,
        "identity": identity,
        "user": user,
        "scope": scope,
        "resource": resource,
        "resource_ok": resource_ok,
        "now": datetime_param(now),
        "credential": int(credential) if credential_by == "id" else credential,
        "token": token_id,
        "source": source,
        "request_id": request_id,
        **refs,
        **context,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@cache
def _insert_sql() -> tuple[str, tuple]:
    fields = tuple(f for f in AccessEvent._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(column(AccessEvent, f.name) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table(AccessEvent)} ({columns}) VALUES ({placeholders}) RETURNING {column(AccessEvent, 'id')}"
    return sql, fields


def insert_event(event: AccessEvent) -> int:
    """Insert an event decided without the rules (an invalid request, so never with a request id) in one round
    trip, and return its id."""
    sql, fields = _insert_sql()
    values = [field.get_db_prep_save(field.pre_save(event, add=True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    return event.pk


def answer_questions(*, tool, identity, user, questions: list[tuple], token_id, now) -> list[tuple]:
    """Answer (scope name, resource, resource_ok, any_resource) questions by the decision rules without recording
    any: (reason, grant id, tool id, identity id, user id) for each, in order."""
    shape = (connection.vendor, isinstance(tool, int), isinstance(identity, int), isinstance(user, int))
    common = {"tool": tool, "identity": identity, "user": user, "now": datetime_param(now), "token": token_id}
    answers = []
    with connection.cursor() as cursor:
        for scope, resource, resource_ok, any_resource in questions:
            params = {**common, "scope": scope, "resource": resource, "resource_ok": resource_ok}
            cursor.execute(question_sql(*shape, isinstance(scope, int), token_id is not None, any_resource), params)
            answers.append(cursor.fetchone())
    return answers
