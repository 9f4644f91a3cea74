"""Fill an empty inventory with benchmark-sized, believable data: thousands of tools, a million credentials.

PostgreSQL gets COPY (psycopg 3) straight into the model tables, which is what turns a million
credentials from minutes of INSERTs into seconds; other databases get batched bulk_create. Table and
column names come from each model's `_meta`, so the command follows the models, including on a test
database built without migrations. Ids are assigned here (the tables start empty) so that foreign
keys can be written without reading anything back; the sequences are moved past them at the end.

Everything is drawn from one seeded random generator: the same arguments give the same estate.
"""

import random
import time
from contextlib import nullcontext

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction

from inventory.management.scale_copy import (
    bulk_create_rows,
    copy_rows,
    secondary_indexes_deferred,
    seeded_and_dependent_models,
)
from inventory.management.scale_estate import OWNER_PREFIX, SEEDED_MODELS, Estate
from inventory.management.scale_words import FIRST_NAMES, LAST_NAMES


class Command(BaseCommand):
    help = (
        "Fill an empty inventory with benchmark-sized data (COPY on PostgreSQL). "
        "--reset first empties the inventory tables and every table that references them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tools", type=int, default=10_000)
        parser.add_argument("--identities", type=int, default=100_000)
        parser.add_argument("--credentials", type=int, default=1_000_000)
        parser.add_argument("--grants", type=int, default=300_000)
        parser.add_argument("--scopes", type=int, default=200)
        parser.add_argument("--owners", type=int, default=200, help="Owner accounts, about 8%% of them departed.")
        parser.add_argument("--teams", type=int, default=None, help="Default: one per 200 tools, 3 to 60.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed; the same seed gives the same data.")
        parser.add_argument("--reset", action="store_true", help="Empty the inventory first (bench databases only).")

    def handle(self, *args, **options):
        for name in ("tools", "identities", "credentials", "grants", "scopes", "owners"):
            if options[name] < 0:
                raise CommandError(f"--{name} must not be negative.")
        if options["owners"] < 1 and (options["tools"] or options["identities"]):
            raise CommandError("Tools and identities need at least one owner.")
        if options["identities"] < 1 and options["credentials"]:
            raise CommandError("Credentials need identities.")
        if (options["tools"] < 1 and options["identities"]) or (options["grants"] and not options["scopes"]):
            raise CommandError("Identities need tools to sit behind, and grants need scopes.")
        teams = options["teams"] if options["teams"] is not None else min(60, max(3, options["tools"] // 200))
        postgres = connection.vendor == "postgresql"
        write = copy_rows if postgres else bulk_create_rows
        started = time.perf_counter()
        rng = random.Random(options["seed"])

        with transaction.atomic():
            if options["reset"]:
                self._truncate(postgres)
            elif any(model._default_manager.exists() for model in SEEDED_MODELS):
                raise CommandError("The inventory is not empty. Pass --reset to truncate it first (bench databases).")
            owners = self._owners(rng, options["owners"])
            sizes = {name: options[name] for name in ("tools", "identities", "credentials", "scopes", "grants")}
            estate = Estate(rng=rng, owners=owners, teams=teams, **sizes)
            self.stdout.write(f"{'owners':<22} {len(owners):>10,}  {time.perf_counter() - started:6.1f}s")
            with secondary_indexes_deferred(SEEDED_MODELS) if postgres else nullcontext():
                for model, fields, rows in estate.tables():
                    step = time.perf_counter()
                    written = write(model, fields, rows)
                    label = model._meta.db_table.removeprefix("inventory_")
                    self.stdout.write(f"{label:<22} {written:>10,}  {time.perf_counter() - step:6.1f}s")
                step = time.perf_counter()
            if postgres:
                self.stdout.write(f"{'indexes':<22} {'':>10}  {time.perf_counter() - step:6.1f}s")
            self._reset_sequences()
            step = time.perf_counter()
        self.stdout.write(f"{'commit':<22} {'':>10}  {time.perf_counter() - step:6.1f}s")

        step = time.perf_counter()
        self._analyze(postgres)
        self.stdout.write(f"{'analyze':<22} {'':>10}  {time.perf_counter() - step:6.1f}s")
        elapsed = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(f"Seeded the inventory in {elapsed:.1f}s on {connection.vendor}."))

    def _truncate(self, postgres: bool) -> None:
        models = seeded_and_dependent_models()
        tables = [connection.ops.quote_name(model._meta.db_table) for model in models]
        self.stdout.write(f"Clearing {len(tables)} tables: {', '.join(model._meta.db_table for model in models)}")
        with connection.cursor() as cursor:
            if postgres:
                # TRUNCATE refuses while foreign-key checks are queued (rows written earlier in this transaction).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                # The audit tables refuse TRUNCATE by trigger; a bench reset is the one place that means it, and only a
                # superuser may switch triggers off for its transaction (anyone else gets the trigger's refusal).
                cursor.execute("SET LOCAL session_replication_role = replica")
                # No CASCADE: a table pointing in that the models do not know about should stop the reset, not vanish.
                cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
                cursor.execute("SET LOCAL session_replication_role = DEFAULT")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            else:
                # Foreign keys are checked at commit, so the order of the deletes does not matter.
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")

    def _owners(self, rng: random.Random, count: int) -> list[int]:
        """Owner accounts by rank (rank 0 owns the most tools). Reused across resets; about 8% departed."""
        user_model = get_user_model()
        names = [f"{OWNER_PREFIX}{rank:04d}" for rank in range(count)]
        existing = set(user_model._default_manager.filter(username__in=names).values_list("username", flat=True))
        unusable = make_password(None)  # seed accounts cannot sign in with a password
        user_model._default_manager.bulk_create(
            [
                user_model(
                    username=name,
                    email=f"{name}@example.test",
                    password=unusable,
                    first_name=rng.choice(FIRST_NAMES),
                    last_name=rng.choice(LAST_NAMES),
                )
                for name in names
                if name not in existing
            ]
        )
        # Departed owners are spread through the tail, never the busiest ones, so each still owns a few things.
        departed = [name for rank, name in enumerate(names) if rank % 12 == 11]
        manager = user_model._default_manager
        manager.filter(username__in=names).exclude(username__in=departed).update(is_active=True)
        manager.filter(username__in=departed).update(is_active=False)
        ids = dict(manager.filter(username__in=names).values_list("username", "pk"))
        return [ids[name] for name in names]

    def _reset_sequences(self) -> None:
        statements = connection.ops.sequence_reset_sql(no_style(), list(SEEDED_MODELS))
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    def _analyze(self, postgres: bool) -> None:
        """Fresh statistics so the planner sees a million credentials, not the empty table it last sampled."""
        tables = [connection.ops.quote_name(model._meta.db_table) for model in SEEDED_MODELS]
        with connection.cursor() as cursor:
            if postgres and not connection.in_atomic_block:
                # VACUUM also sets the visibility map, as autovacuum would have in a live database,
                # so index-only scans in the benchmark behave as they would in production.
                cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
            elif postgres:
                cursor.execute(f"ANALYZE {', '.join(tables)}")
            else:
                cursor.execute("ANALYZE")
