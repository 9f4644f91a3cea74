"""API tokens (django-rest-knox): who sees and manages which, issuing and revoking them, each with its audit entry.

- Everyone who uses the portal lists, issues and revokes their own tokens.
- Security also lists, issues and revokes gateway accounts' tokens, and only those may carry tool limits
  (`approvals.models.GatewayToolLimit`): a gateway token limited to the tools that gateway fronts.
- A token is shown once, in the answer that issues it; knox keeps only its digest. Its public id is the first 16
  characters of that digest: it names the token without revealing anything of it.
- Revoking deletes the token (knox's way: a token that does not exist cannot authenticate).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from knox.models import AuthToken

from approvals.models import GatewayToolLimit
from inventory.audit.record import audit_record
from inventory.models import AITool
from nhi_portal import roles

MAX_DAYS = 365
ID_LENGTH = 16


class TokenRefused(Exception):
    """The request names something the caller may not do; `errors` is {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def public_id(token: AuthToken) -> str:
    return token.digest[:ID_LENGTH]


@dataclass(frozen=True)
class _AuditedToken:
    """What an audit entry names: the token's public id and owner, never its digest."""

    pk: str
    label: str
    _meta = AuthToken._meta

    def __str__(self) -> str:
        return self.label


def _audited(token: AuthToken, username: str) -> _AuditedToken:
    return _AuditedToken(pk=public_id(token), label=f"API token {public_id(token)} of {username}")


def tokens_visible_to(user) -> QuerySet:
    """Unexpired tokens the user manages: their own; for security, gateway accounts' too. One query, plus one for
    the tool limits."""
    scope = Q(user=user)
    if roles.is_security(user):
        scope |= Q(user__groups__name=roles.GATEWAY)
    limits = Prefetch("tool_limit__tools", queryset=AITool.objects.only("id", "slug").order_by("slug"))
    return (
        AuthToken.objects.filter(scope)
        .filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
        .select_related("user", "tool_limit", "use")
        .prefetch_related(limits)
        .distinct()
        .order_by("-created", "digest")
    )


def token_get(*, user, token_id: str) -> AuthToken | None:
    if len(token_id) != ID_LENGTH or any(c not in "0123456789abcdef" for c in token_id):
        return None
    return tokens_visible_to(user).filter(digest__startswith=token_id).first()


def tool_slugs(token: AuthToken) -> list[str] | None:
    """The tools a token is limited to; None when it is not limited."""
    limit = getattr(token, "tool_limit", None)  # a missing one-to-one raises an AttributeError subclass
    return [tool.slug for tool in limit.tools.all()] if limit is not None else None


def token_issue(
    *, actor, username: str | None = None, days: int | None = None, tools: list[str] | None = None, via: str = "api"
):
    """Issue a token; returns (token, the token's text, shown once). Raises TokenRefused with field errors."""
    days = settings.REST_KNOX["TOKEN_TTL"].days if days is None else days
    if not 1 <= days <= MAX_DAYS:
        raise TokenRefused({"days": f"Between 1 and {MAX_DAYS}."})
    holder = actor if username in (None, "", actor.get_username()) else None
    if holder is None:
        holder = get_user_model().objects.filter(username=username, is_active=True).first()
        if holder is None or not roles.is_security(actor) or not roles.is_gateway(holder):
            raise TokenRefused({"user": "You may issue tokens for yourself, and security for gateway accounts."})
    limited = list(AITool.objects.filter(slug__in=tools or []).only("id", "slug").order_by("slug"))
    if tools:
        if not roles.is_gateway(holder) or not roles.is_security(actor):
            raise TokenRefused({"tools": "Only gateway accounts' tokens are limited to tools, by security."})
        if missing := sorted(set(tools) - {tool.slug for tool in limited}):
            raise TokenRefused({"tools": f"Unknown tool(s): {', '.join(missing)}."})
    with transaction.atomic():
        token, text = AuthToken.objects.create(user=holder, expiry=timedelta(days=days))
        if limited:
            limit = GatewayToolLimit.objects.create(token=token)
            limit.tools.set(limited)
        audit_record(
            actor=actor,
            action="token.issued",
            obj=_audited(token, holder.get_username()),
            after={
                "user": holder.get_username(),
                "expires": token.expiry.isoformat(),
                "tools": [tool.slug for tool in limited] or None,
                "via": via,
            },
        )
    return token, text


def token_revoke(*, actor, token: AuthToken) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="token.revoked",
            obj=_audited(token, token.user.get_username()),
            before={"user": token.user.get_username(), "expires": token.expiry.isoformat() if token.expiry else None},
        )
        AuthToken.objects.filter(digest=token.digest).delete()
