"""Print a new API token for a user. Only its hash is stored; the token is shown once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken

MAX_DAYS = 365


class Command(BaseCommand):
    help = "Issue an expiring API token for USERNAME and print it once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=30, help=f"Lifetime in days (1 to {MAX_DAYS}, default 30).")

    def handle(self, *args, username: str, days: int, **options):
        from datetime import timedelta

        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}.")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        instance, token = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
        self.stderr.write(f"Token for {username}, expires {instance.expiry:%Y-%m-%d %H:%M} UTC. It is shown only once:")
        self.stdout.write(token)
