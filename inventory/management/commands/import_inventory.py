"""`python manage.py import_inventory FILE [--actor USERNAME]`: the bulk import from a file, same rules as the API."""

import json
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.imports.document import ImportRejected, inventory_import


class Command(BaseCommand):
    help = (
        "Upsert scopes, tools, identities, credentials and grants from one JSON document (FILE, or - for "
        "standard input). All or nothing: on any error nothing changes and the errors are printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path to the JSON document, or - to read standard input.")
        parser.add_argument(
            "--actor", help="Username recorded as the importer; must be security. Default: the first superuser."
        )

    def handle(self, *args: Any, file: str, actor: str | None, **options: Any) -> None:
        user = _actor(actor)
        document = _load(file)
        try:
            result = inventory_import(actor=user, document=document)
        except PermissionDenied as exc:
            raise CommandError(f"{user.get_username()}: {exc}") from None
        except ImportRejected as exc:
            for error in exc.errors:
                self.stderr.write(f"{error['path'] or 'document'}: {error['message']}")
            if exc.truncated:
                self.stderr.write("... more errors not shown.")
            raise CommandError(exc.message) from None
        self.stdout.write(f"Imported as {user.get_username()} (audit entry {result.audit_entry_id}).")
        for kind, counts in result.counts.items():
            line = ", ".join(f"{n} {what}" for what, n in counts.items())
            self.stdout.write(f"  {kind}: {line}")
        # Warnings are about rows that were applied, so they belong to the result (stdout), not to a failure.
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning['path']}: {warning['message']}"))
        if result.warnings_truncated:
            self.stdout.write(self.style.WARNING("... more warnings not shown."))
        done = f"Import complete, with {len(result.warnings)} warning(s)." if result.warnings else "Import complete."
        self.stdout.write(self.style.SUCCESS(done))


def _actor(username: str | None):
    users = get_user_model().objects.filter(is_active=True)
    if username:
        user = users.filter(username=username).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        return user
    user = users.filter(is_superuser=True).order_by("pk").first()
    if user is None:
        raise CommandError("No active superuser to record as the importer; pass --actor USERNAME (a security user).")
    return user


def _load(path: str) -> Any:
    limit = settings.IMPORT_MAX_BYTES
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(limit + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
    if len(raw) > limit:
        raise CommandError(f"{path} is larger than the {limit} bytes an import may be (IMPORT_MAX_BYTES).")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        # Position only: the message never quotes the file, which may hold secrets.
        raise CommandError(f"{path}: malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: malformed JSON: not UTF-8 text.") from None
    except RecursionError:
        raise CommandError(f"{path}: malformed JSON: nested too deeply.") from None
