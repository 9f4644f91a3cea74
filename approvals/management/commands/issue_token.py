"""Print a new API token for a user. Only its hash is stored; the token is shown once."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from knox.models import AuthToken

from approvals.models import GatewayToolLimit
from inventory.audit.record import audit_record
from inventory.models import AITool

MAX_DAYS = 365


@dataclass(frozen=True)
class _AuditedToken:
    """What the audit entry names: the token's public id (the first 16 characters of its digest) and holder."""

    pk: str
    label: str
    _meta = AuthToken._meta

    def __str__(self) -> str:
        return self.label


class Command(BaseCommand):
    help = "Issue an expiring API token for USERNAME and print it once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=30, help=f"Lifetime in days (1 to {MAX_DAYS}, default 30).")
        parser.add_argument(
            "--tool",
            action="append",
            default=[],
            metavar="SLUG",
            help="Limit a gateway token to the tools it fronts (repeat for several).",
        )

    def handle(self, *args, username: str, days: int, tool: list[str], **options):
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}.")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        tools = list(AITool.objects.filter(slug__in=tool))
        if missing := set(tool) - {t.slug for t in tools}:
            raise CommandError(f"Unknown tool(s): {', '.join(sorted(missing))}.")
        with transaction.atomic():
            instance, token = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
            if tools:
                limit = GatewayToolLimit.objects.create(token=instance)
                limit.tools.set(tools)
            # Audited like the API's and the page's issuing (operations/tokens.py), under the same public id.
            audit_record(
                actor=None,
                actor_label="cli",
                action="token.issued",
                obj=_AuditedToken(pk=instance.digest[:16], label=f"API token {instance.digest[:16]} of {username}"),
                after={
                    "user": username,
                    "expires": instance.expiry.isoformat(),
                    "tools": sorted(t.slug for t in tools) or None,
                    "via": "cli",
                },
            )
        scope = f", limited to {', '.join(t.slug for t in tools)}" if tools else ""
        self.stderr.write(
            f"Token for {username}{scope}, expires {instance.expiry:%Y-%m-%d %H:%M} UTC. Shown only once:"
        )
        self.stdout.write(token)
