"""Recheck every sealed batch of the audit trail and the access events against the rows and the anchor; exit 1 on any
problem, naming the first and listing the rest."""

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from inventory.audit.sealing import seal_all
from inventory.audit.verify import verify


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
            if not json:
                for problem in result.problems[1:]:
                    self.stderr.write(f"Also, in {problem.stream}: {problem.problem}")
            # Not every problem is tampering: sealing or anchoring that fell behind is reported the same way.
            where = f"{result.stream} batch {result.batch}" if result.batch is not None else result.stream
            raise CommandError(
                f"Audit chain check failed in {where}: {result.problem} "
                f"(first bad entry: {result.first_bad}; {result.checked} sealed entries verified intact)."
            )


def _dumps(data: dict) -> str:
    return jsonlib.dumps(data)
