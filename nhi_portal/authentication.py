"""API token authentication: knox's hashed, expiring tokens, checked in one query, and a limit on failures.

Knox's own check lists the user's other tokens on every request to delete the expired ones, and the portal roles
need one more query after it: three round trips, and about 3 ms of ORM query building, before a view runs, on an
API whose busiest caller is a gateway asking `/authorize/` before each AI action (bench/authorize.py). Here expired
tokens are never matched (a daily job deletes them, `approvals.tasks.delete_expired_tokens`), and the token, its
user and the user's portal roles come back in one row of a statement built once from the models' metadata
(`nhi_portal.sql`). Its plain-Python reference, the readable specification of the whole check:
`nhi_portal.authentication_reference.authenticate_reference`; tests/test_token_lookup_reference.py holds them equal.
"""

import binascii
from functools import cache
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models.sql import Query
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from . import roles
from .sql import column, datetime_param, table
from .throttles import token_failures


@cache
def _lookup() -> tuple[str, list, list]:
    """The statement, and the token's and the user's fields in the order of its columns. Python reference:
    `nhi_portal.authentication_reference.authenticate_reference` (the key, expiry and role rules)."""
    token_model, user_model = get_token_model(), get_user_model()
    token_fields, user_fields = list(token_model._meta.concrete_fields), list(user_model._meta.concrete_fields)
    memberships, group_model = user_model.groups.through, user_model.groups.field.related_model
    has_role = (
        f"EXISTS (SELECT 1 FROM {table(memberships)} m JOIN {table(group_model)} g "
        f"ON g.{column(group_model, 'pk')} = m.{column(memberships, 'group')} "
        f"WHERE m.{column(memberships, 'user')} = u.{column(user_model, 'pk')} "
        f"AND g.{column(group_model, 'name')} = %s)"
    )
    columns = [f"t.{column(token_model, f.name)}" for f in token_fields]
    columns += [f"u.{column(user_model, f.name)}" for f in user_fields]
    columns += [has_role] * len(roles.ALL_ROLES)
    expiry = column(token_model, "expiry")
    sql = (
        f"SELECT {', '.join(columns)} FROM {table(token_model)} t JOIN {table(user_model)} u "
        f"ON u.{column(user_model, 'pk')} = t.{column(token_model, 'user')} "
        f"WHERE t.{column(token_model, 'token_key')} = %s AND (t.{expiry} IS NULL OR t.{expiry} > %s)"
    )
    return sql, token_fields, user_fields


def _row_converters() -> tuple:
    """The compiler and the backend's converters for the lookup's token and user columns (aware datetimes on
    SQLite, say), exactly as a queryset would apply them; on PostgreSQL there are none.

    Kept on this thread's connection, which they refer to and die with: working them out again cost 44 us on every
    API request."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's, not the proxy all threads share
    cached = getattr(wrapper, "_nhi_token_row_converters", None)
    if cached is None:
        _, token_fields, user_fields = _lookup()
        compiler = Query(get_token_model()).get_compiler(connection=wrapper)
        columns = [f.get_col(f.model._meta.db_table) for f in token_fields + user_fields]
        cached = wrapper._nhi_token_row_converters = compiler, compiler.get_converters(columns)
    return cached


def _candidates(token_key: str, now) -> list:
    """Unexpired tokens with this key (in practice one), each with its user and the user's roles attached."""
    sql, token_fields, user_fields = _lookup()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*roles.ALL_ROLES, token_key, datetime_param(now)])
        rows = cursor.fetchall()
    compiler, converters = _row_converters()
    user_at = len(token_fields)
    roles_at = user_at + len(user_fields)
    candidates = []
    for row in compiler.apply_converters(rows, converters) if converters else rows:
        token = get_token_model().from_db(connection.alias, [f.attname for f in token_fields], row[:user_at])
        token.user = get_user_model().from_db(connection.alias, [f.attname for f in user_fields], row[user_at:roles_at])
        roles.remember(token.user, (role for role, held in zip(roles.ALL_ROLES, row[roles_at:], strict=True) if held))
        candidates.append(token)
    return candidates


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate(self, request):
        """Knox's check, with failed attempts counted per client address: over the "token_failure" rate the answer is
        429, and this worker stops looking tokens up for that address until its window ends. A valid token is never
        counted and, unless its address is blocked, costs one empty-dict check more."""
        wait = token_failures.blocked_for(request)
        if wait is not None and self._names_a_token(request):
            raise _too_many_failures(wait)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            wait = token_failures.record_failure(request)
            if wait is not None:
                raise _too_many_failures(wait) from None
            raise

    def _names_a_token(self, request) -> bool:
        scheme = get_authorization_header(request).split()[:1]
        return bool(scheme) and scheme[0].lower() == self.authenticate_header(request).encode().lower()

    def authenticate_credentials(self, token: bytes):
        invalid = exceptions.AuthenticationFailed(_("Invalid token."))
        try:
            token = token.decode("ascii")
            digest = hash_token(token)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise invalid from None
        if not token.isprintable():  # a NUL would reach the query, and PostgreSQL refuses it in text
            raise invalid
        for auth_token in _candidates(token[: CONSTANTS.TOKEN_KEY_LENGTH], timezone.now()):
            if compare_digest(digest, auth_token.digest):
                return self.validate_user(auth_token)
        raise invalid


def _too_many_failures(wait: float) -> exceptions.Throttled:
    return exceptions.Throttled(wait, detail="Too many failed token authentications from this address.")


class TokenScheme(KnoxTokenScheme):
    """The API schema documents the same `Authorization: Token <token>` header as knox's own class."""

    target_class = TokenAuthentication
