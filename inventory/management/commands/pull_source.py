"""`python manage.py pull_source [NAME ...] [--dry-run]`: run configured live pulls (SOURCE_PULLS) now, in this
process, as beat's `pull-discovery-sources` would on a worker; with no NAME, every configured pull."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.imports.sources.pulls import pull_configs, source_pull


class Command(BaseCommand):
    help = "Fetch discovery sources from their providers' APIs (SOURCE_PULLS) and import them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Pulls to run (keys of SOURCE_PULLS); default: all.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Fetch and report what would change; change nothing."
        )

    def handle(self, *args: Any, names: list[str], dry_run: bool, **_) -> None:
        configured = pull_configs()
        if not configured:
            raise CommandError("No pulls are configured (SOURCE_PULLS is empty).")
        unknown = sorted(set(names) - configured.keys())
        if unknown:
            raise CommandError(f"Not in SOURCE_PULLS: {', '.join(unknown)}. Configured: {', '.join(configured)}.")
        failed = 0
        for name in names or sorted(configured):
            outcome = source_pull(name=name, dry_run=dry_run)
            if outcome.outcome != "pulled":
                failed += 1
                self.stderr.write(f"{name}: failed: {outcome.detail}")
                continue
            result = outcome.result
            head = "dry run" if dry_run else f"run {result['run']}" if result["run"] else "nothing changed"
            counts = ", ".join(
                f"{key} {sum(result[key].values())}" for key in ("created", "updated", "unchanged", "gone")
            )
            self.stdout.write(f"{name}: {head}: {counts}")
        if failed:
            raise CommandError(f"{failed} pull(s) failed.")
