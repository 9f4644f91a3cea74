"""Recheck every sealed batch of the audit trail and the access events; exit 1 on the first problem."""

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from inventory.sealing import seal_all, verify


class Command(BaseCommand):
    help = "Verify the hash chain over audit entries and access events."

    def add_arguments(self, parser):
        parser.add_argument("--seal-first", action="store_true", help="Seal pending entries before verifying.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, seal_first: bool, json: bool, **options):
        if seal_first:
            seal_all()
        result = verify()
        if json:
            self.stdout.write(_dumps(result.as_dict()))
        elif result.ok:
            self.stdout.write(self.style.SUCCESS(f"OK: {result.checked} sealed entries verified."))
        if not result.ok:
            raise CommandError(
                f"Tampering found in {result.stream} batch {result.batch}: {result.problem} "
                f"(first bad entry: {result.first_bad}; {result.checked} entries verified before it)."
            )


def _dumps(data: dict) -> str:
    return jsonlib.dumps(data)
