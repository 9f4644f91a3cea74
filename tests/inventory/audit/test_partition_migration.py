"""Issue 17: an existing deployment's access events are partitioned in place by migration 0028 (audit_partition_events):
its rows stay where they are, in the `_legacy` partition, ids continue, and the request-id rule still holds for them.

Run from outside: `manage.py migrate` in a subprocess against a scratch database of its own, as an upgrade would."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def scratch_url():
    params = connection.get_connection_params()
    name = f"{connection.settings_dict['NAME']}_convert"[:63]
    auth = f"{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}"
    admin = f"postgres://{auth}/postgres"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://{auth}/{name}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str, target: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "nhi_portal.settings.test"}
    done = subprocess.run([sys.executable, "manage.py", "migrate", "inventory", target, "--verbosity", "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


INSERT = """
INSERT INTO inventory_accessevent (occurred_at, recorded_at, kind, source, request_id, tool_ref, identity_ref,
    on_behalf_of_ref, scope_ref, resource, decision, reason)
VALUES (%(at)s, %(at)s, 'decision', 'gw', %(rid)s, 't', 'i', 'u', 's', '', 'deny', 'unknown_tool') RETURNING id
"""


def test_an_existing_events_table_is_partitioned_in_place(scratch_url):
    _migrate(scratch_url, "0027")
    with psycopg.connect(scratch_url, autocommit=True) as db:
        old = [db.execute(INSERT, {"at": at, "rid": f"r-{n}"}).fetchone()[0]
               for n, at in enumerate(("2026-01-15 10:00+00", "2026-06-15 10:00+00", datetime.now(UTC)))]  # fmt: skip
    _migrate(scratch_url, "0028")
    with psycopg.connect(scratch_url, autocommit=True) as db:
        assert db.execute("SELECT relkind FROM pg_class WHERE relname = 'inventory_accessevent'").fetchone() == ("p",)
        where = db.execute("SELECT tableoid::regclass::text, id FROM inventory_accessevent ORDER BY id").fetchall()
        assert where == [("inventory_accessevent_legacy", pk) for pk in old]
        # Ids go on from where the old sequence stood; a new row of next month goes to its own partition.
        new = db.execute(INSERT, {"at": datetime.now(UTC) + timedelta(days=40), "rid": "r-new"}).fetchone()[0]
        assert new == old[-1] + 1
        part = db.execute("SELECT tableoid::regclass::text FROM inventory_accessevent WHERE id = %s", [new]).fetchone()
        assert part[0].startswith("inventory_accessevent_y")
        # The old rows keep their request-id rule, and the old table's triggers still refuse changes.
        again = db.execute(INSERT.replace(" RETURNING", " ON CONFLICT DO NOTHING RETURNING"),
                           {"at": "2026-06-20 10:00+00", "rid": "r-1"}).fetchone()  # fmt: skip
        assert again is None
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="DELETE refused"):
            db.execute("DELETE FROM inventory_accessevent WHERE id = %s", [old[0]])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="DETACH refused"):
            db.execute("ALTER TABLE inventory_accessevent DETACH PARTITION inventory_accessevent_legacy")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE refused"):
            db.execute("TRUNCATE inventory_accessevent_legacy")
