"""Recheck every sealed batch of the audit trail and the access events against the rows and the anchor; exit 1 on any
problem, naming the first and listing the rest. Runs in the foreground and is recorded like the workers' runs (the API
and the audit page show it), and a clean full run moves the verification checkpoints on."""

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from inventory.audit.anchor import FileAnchor
from inventory.audit.retention import verify_archive
from inventory.audit.runs import verification_now
from inventory.audit.sealing import seal_all


class Command(BaseCommand):
    help = "Verify the hash chain over audit entries and access events."

    def add_arguments(self, parser):
        parser.add_argument("--seal-first", action="store_true", help="Seal pending entries before verifying.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--archive",
            metavar="FILE",
            help="Verify an archived month (inventory/audit/retention.py) offline, with the seal keys only.",
        )
        parser.add_argument(
            "--anchor", metavar="FILE", help="With --archive: the anchor file the batch digests must also be in."
        )
        parser.add_argument(
            "--incremental", action="store_true", help="Only what was sealed since the last verification checkpoint."
        )

    def handle(self, *args, seal_first: bool, json: bool, incremental: bool, archive, anchor, **options):
        if archive:
            return self._verify_archive(archive, anchor, json)
        if seal_first:
            seal_all()
        _run, result = verification_now(
            kind="incremental" if incremental else "full", requested_by="manage.py verify_audit"
        )
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

    def _verify_archive(self, path: str, anchor_path: str | None, json: bool) -> None:
        """No database: the file, the seal keys from the environment, and optionally the anchor file."""
        anchor = FileAnchor(anchor_path).records() if anchor_path else None
        try:
            with open(path, "rb") as handle:
                result = verify_archive(handle, anchor)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from None
        if json:
            self.stdout.write(_dumps(result.as_dict()))
        if not result.ok:
            raise CommandError(f"Archive check failed: {result.problem} (first bad entry: {result.first_bad}).")
        if not json:
            header = result.header
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {result.checked} {header['stream']} rows of {header['month']} verified "
                    f"(batches {header['first_seq']} to {header['last_seq']})."
                )
            )


def _dumps(data: dict) -> str:
    return jsonlib.dumps(data)
