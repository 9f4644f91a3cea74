"""Run a detection scan now, in this process, and take today's posture snapshot: what the Celery job does, for a
fresh install (make run seeds the demo estate, then scans it) or a shell without a worker."""

from django.core.management.base import BaseCommand, CommandError

from inventory.detection.scan import ScanBusy, scan_create, scan_run
from inventory.posture import evaluate as posture


class Command(BaseCommand):
    help = "Run every detector (or those named) and take the posture snapshot."

    def add_arguments(self, parser):
        parser.add_argument("detectors", nargs="*", help="Detector keys; all when none are given.")

    def handle(self, *args, detectors: list[str], **options):
        try:
            created = scan_create(detectors=detectors)
        except ValueError as error:
            raise CommandError(str(error)) from None
        try:
            scan = scan_run(created.pk)
        except ScanBusy:
            raise CommandError("Another scan is running; try again when it has finished.") from None
        opened = sum(result.get("opened", 0) for result in scan.counts.values())
        resolved = sum(result.get("resolved", 0) for result in scan.counts.values())
        posture.snapshot()
        self.stdout.write(
            self.style.SUCCESS(f"Scan {scan.pk} {scan.status}: {opened} findings opened, {resolved} resolved.")
        )
        if scan.error:
            raise CommandError(scan.error)
