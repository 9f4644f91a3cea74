"""`python manage.py import_source KIND FILE [--dry-run] [--full] [--account LABEL] [--actor USERNAME]`: one
provider export, same rules and counts as `POST /api/v1/sources/{kind}/import/`."""

import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.imports.sources.kinds import KINDS
from inventory.imports.sources.records import SourceRejected
from inventory.imports.sources.sync import source_import
from inventory.management.commands.import_inventory import _actor


class Command(BaseCommand):
    help = (
        "Import a provider's own export (KIND: " + ", ".join(KINDS) + "). All or nothing: on any error nothing "
        "changes and each error is printed with its line or path and field."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS), help="The source kind.")
        parser.add_argument("file", help="Path to the export, or - to read standard input.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; change nothing.")
        parser.add_argument("--full", action="store_true", help="What this source no longer lists is gone.")
        parser.add_argument("--account", default="", help="Which account, org or tenant the file is from.")
        parser.add_argument("--actor", help="Username recorded as the importer; must be security.")

    def handle(self, *args: Any, kind: str, file: str, dry_run: bool, full: bool, account: str, actor, **_) -> None:
        user = _actor(actor)
        raw = _read(file)
        try:
            result = source_import(actor=user, kind=kind, raw=raw, dry_run=dry_run, full=full, account=account)
        except PermissionDenied as exc:
            raise CommandError(f"{user.get_username()}: {exc}") from None
        except SourceRejected as exc:
            for error in exc.errors:
                where = f"line {error['line']}" if "line" in error else (error.get("path") or "file")
                field = f" {error['field']}" if error.get("field") else ""
                self.stderr.write(f"{where}{field}: {error['message']}")
            if exc.truncated:
                self.stderr.write("... more errors not shown.")
            raise CommandError(exc.message) from None
        head = "Dry run (nothing changed)" if dry_run else f"Run {result.run}" if result.run else "Nothing changed"
        self.stdout.write(f"{head}: {kind}" + (f" ({account})" if account else "") + f" as {user.get_username()}.")
        for name in ("created", "updated", "unchanged", "gone"):
            counts = getattr(result, name)
            self.stdout.write(f"  {name}: {counts['identities']} identities, {counts['credentials']} credentials")
        for warning in result.warnings:
            where = f"line {warning['line']}" if "line" in warning else (warning.get("path") or "file")
            self.stdout.write(
                self.style.WARNING(f"warning: {where} {warning.get('field') or ''}: {warning['message']}")
            )
        self.stdout.write(self.style.SUCCESS("Import complete."))


def _read(path: str) -> bytes:
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
    return raw
