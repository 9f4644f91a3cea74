"""The two statements behind a decision: one read of everything the rules need, one insert of the event.

`/api/v1/authorize/` sits in front of every AI action, so its cost is paid per action. Built with the ORM, the
annotated lookup took about 10 ms of Python per call to compile, more than the database needed to run it
(bench/authorize.py). Here the SQL is generated once per query shape from the models' own table and column names,
so a renamed field still breaks loudly at import rather than silently at run time, and each call only binds
parameters. The statements are plain SQL that PostgreSQL and SQLite both run.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from inventory.models import AccessEvent, AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity
from nhi_portal.sql import column, table

from .models import GatewayToolLimit

User = get_user_model()


def _key(model, by_id: bool, natural: str) -> str:
    """Ints are ids; strings are natural keys, even when they look like numbers: no ambiguity."""
    return column(model, "id" if by_id else natural)


@cache
def context_sql(
    tool_by_id: bool, identity_by_id: bool, user_by_id: bool, scope_by_id: bool, credential: str, token: bool
) -> str:
    """One row per candidate grant (or one row with NULL grant columns), each carrying the same context columns.

    `credential` is "" (none named), "id" or "fingerprint". Natural keys are unique columns, so each LEFT JOIN
    matches at most one row and the grants are the only thing that can multiply rows.
    """
    tool, identity, user, scope = table(AITool), table(ServiceIdentity), table(User), table(Scope)
    binding, credentials, grants = table(ToolIdentity), table(Credential), table(ScopeGrant)
    allowed_users = AITool.allowed_users.through
    allowed_teams = AITool.allowed_teams.through
    members = Team.members.through
    cred = lambda name: f"c.{column(Credential, name)}"  # noqa: E731
    live = f"{cred('revoked_at')} IS NULL AND ({cred('expires_at')} IS NULL OR {cred('expires_at')} > %(now)s)"
    columns = [
        f"t.{column(AITool, 'id')} AS id",
        f"t.{column(AITool, 'status')} AS status",
        f"i.{column(ServiceIdentity, 'id')} AS identity_id",
        f"i.{column(ServiceIdentity, 'status')} AS identity_status",
        f"u.{column(User, 'id')} AS user_id",
        f"u.{column(User, 'is_active')} AS user_active",
        f"s.{column(Scope, 'id')} AS scope_id",
        f"""EXISTS (SELECT 1 FROM {binding} b WHERE b.{column(ToolIdentity, "tool")} = t.{column(AITool, "id")}
                    AND b.{column(ToolIdentity, "identity")} = i.{column(ServiceIdentity, "id")}) AS bound""",
        f"""EXISTS (SELECT 1 FROM {credentials} c
                    WHERE {cred("identity")} = i.{column(ServiceIdentity, "id")}) AS has_credential""",
        f"""EXISTS (SELECT 1 FROM {credentials} c
                    WHERE {cred("identity")} = i.{column(ServiceIdentity, "id")} AND {live}) AS has_live_credential""",
        f"""(EXISTS (SELECT 1 FROM {table(allowed_users)} au
                     WHERE au.{column(allowed_users, "aitool")} = t.{column(AITool, "id")}
                     AND au.{column(allowed_users, "user")} = u.{column(User, "id")})
             OR EXISTS (SELECT 1 FROM {table(allowed_teams)} at
                        JOIN {table(members)} m ON m.{column(members, "team")} = at.{column(allowed_teams, "team")}
                        WHERE at.{column(allowed_teams, "aitool")} = t.{column(AITool, "id")}
                        AND m.{column(members, "user")} = u.{column(User, "id")})) AS user_allowed""",
        f"""(g.{column(ScopeGrant, "expires_at")} IS NULL OR g.{column(ScopeGrant, "expires_at")} > %(now)s)
            AS grant_current""",
        f"g.{column(ScopeGrant, 'id')} AS grant_id",
        f"g.{column(ScopeGrant, 'status')} AS grant_status",
        f"g.{column(ScopeGrant, 'resource_constraint')} AS grant_resource",
    ]
    if credential:
        named = f"{cred('id')} = %(credential)s" if credential == "id" else f"{cred('fingerprint')} = %(credential)s"
        columns.append(
            f"""(SELECT {cred("id")} FROM {credentials} c WHERE {cred("identity")} = i.{column(ServiceIdentity, "id")}
                 AND {live} AND {named}) AS named_credential_id"""
        )
    if token:
        limits, fronted = table(GatewayToolLimit), GatewayToolLimit.tools.through
        limit_token = f"l.{column(GatewayToolLimit, 'token')} = %(token)s"
        columns.append(f"EXISTS (SELECT 1 FROM {limits} l WHERE {limit_token}) AS token_limited")
        columns.append(
            f"""EXISTS (SELECT 1 FROM {limits} l JOIN {table(fronted)} lt
                        ON lt.{column(fronted, "gatewaytoollimit")} = l.{column(GatewayToolLimit, "id")}
                        WHERE {limit_token} AND lt.{column(fronted, "aitool")} = t.{column(AITool, "id")})
                AS token_fronts"""
        )
    grant_tool = f"g.{column(ScopeGrant, 'tool')}"
    return f"""
        SELECT {", ".join(columns)}
        FROM {tool} t
        LEFT JOIN {identity} i ON i.{_key(ServiceIdentity, identity_by_id, "name")} = %(identity)s
        LEFT JOIN {user} u ON u.{_key(User, user_by_id, "username")} = %(user)s
        LEFT JOIN {scope} s ON s.{_key(Scope, scope_by_id, "name")} = %(scope)s
        LEFT JOIN {grants} g ON g.{column(ScopeGrant, "identity")} = i.{column(ServiceIdentity, "id")}
            AND g.{column(ScopeGrant, "scope")} = s.{column(Scope, "id")}
            AND ({grant_tool} = t.{column(AITool, "id")} OR {grant_tool} IS NULL)
        WHERE t.{_key(AITool, tool_by_id, "slug")} = %(tool)s
        ORDER BY g.{column(ScopeGrant, "id")}
    """


def load_context(*, tool, identity, user, scope, credential: str, token_id, now) -> tuple[dict | None, list[dict]]:
    """The tool's row with what the rules need, and the candidate grants in id order. (None, []) if no such tool."""
    credential_by = ""
    if credential:
        # Gateways name the credential by id (they cannot compute the keyed fingerprint) or by fingerprint.
        by_id = credential.isascii() and credential.isdigit() and len(credential) < 19
        credential_by = "id" if by_id else "fingerprint"
    sql = context_sql(
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
        "now": connection.ops.adapt_datetimefield_value(now),
        "credential": int(credential) if credential_by == "id" else credential,
        "token": token_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [described[0] for described in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    if not rows:
        return None, []
    grants = [
        {"id": row["grant_id"], "status": row["grant_status"], "current": bool(row["grant_current"]),
         "resource_constraint": row["grant_resource"]}
        for row in rows if row["grant_id"] is not None
    ]  # fmt: skip
    return rows[0], grants


@cache
def _insert_sql() -> tuple[str, tuple]:
    fields = tuple(f for f in AccessEvent._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(column(AccessEvent, f.name) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # The conflict target names the request-id constraint (uniq_event_request_id), so that any other violation
    # still raises instead of passing for a repeated request.
    target = ", ".join(column(AccessEvent, name) for name in ("source", "kind", "request_id"))
    sql = (
        f"INSERT INTO {table(AccessEvent)} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT ({target}) WHERE NOT ({column(AccessEvent, 'request_id')} = '') DO NOTHING "
        f"RETURNING {column(AccessEvent, 'id')}"
    )
    return sql, fields


def insert_event(event: AccessEvent) -> int | None:
    """Insert the event and return its id; None if its request id was already recorded (nothing is written).

    One round trip in autocommit and inside a transaction alike: a conflict is not an error, so no savepoint."""
    sql, fields = _insert_sql()
    values = [field.get_db_prep_save(field.pre_save(event, add=True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return None
    event.pk = row[0]
    event._state.adding = False
    return event.pk
