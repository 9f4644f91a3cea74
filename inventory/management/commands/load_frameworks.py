"""Load or refresh the control catalog from inventory/posture/catalogs/*.json. Safe to run again: unchanged data
stays."""

from django.core.management.base import BaseCommand

from inventory.posture.catalog import load_frameworks


class Command(BaseCommand):
    help = "Load the framework control catalog (idempotent; retires controls a new revision drops)."

    def handle(self, *args, **options):
        result = load_frameworks()
        self.stdout.write(
            f"{len(result.files)} catalog files: frameworks +{result.frameworks_created} ~{result.frameworks_updated}; "
            f"controls +{result.controls_created} ~{result.controls_updated} retired {result.controls_retired}; "
            f"{result.unchanged} unchanged; {result.frameworks_skipped} older revisions skipped."
        )
