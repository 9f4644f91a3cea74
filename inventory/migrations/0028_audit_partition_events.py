"""Access events partitioned by month on PostgreSQL (declarative, by the time the portal recorded them); SQLite keeps
one table, and Django's view of the model does not change.

The table is converted in place, nothing copied: the existing table becomes the partition `..._legacy` for every time
up to the month after its newest row (it is dropped only once all its months are archived), an empty one is dropped;
then one partition per month from there to three months ahead, and a DEFAULT partition so that an insert never fails
for want of a partition (a clock far off, a back-filled month); the retention job creates months ahead
(inventory/audit/partitions.py).

A unique index on a partitioned table must include the partition key, which the request-id and the one-usage-per-
decision constraints cannot. Each partition has them as its own unique indexes instead: a repeated request id within a
month conflicts as before (the decision statement's untargeted ON CONFLICT DO NOTHING sees a partition's indexes), and
the constraint is dropped with its month. The parent has no primary key; each partition has its own on id.

The append-only triggers move to the parent (row triggers are cloned to every partition); TRUNCATE triggers are
statement-level, which PostgreSQL does not clone, so every partition gets its own. A guard (event triggers, created
only when the migrating role is a superuser, which event triggers require) refuses DROP and DETACH of the events
table or any of its partitions unless the retention job recorded the partition in ArchivedPartition in the same
transaction, and refuses disabling the audit tables' triggers.
"""

from django.db import migrations, models

PARENT = "inventory_accessevent"
LEGACY = f"{PARENT}_legacy"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION nhi_event_partition_local(part text) RETURNS void AS $$
BEGIN
    -- What a partitioned parent cannot hold: the primary key and the unique constraints without the partition key.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (id)', part, part || '_pkey');
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I (source, kind, request_id) WHERE request_id <> %L',
                   part || '_request_id', part, '');
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I (decision_event_id) WHERE decision_event_id IS NOT NULL',
                   part || '_one_usage', part);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION nhi_refuse_change()',
                   part || '_no_truncate', part);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION nhi_event_partition(month date) RETURNS text AS $$
DECLARE
    part text := '{PARENT}_y' || to_char(month, 'YYYY"m"MM');
    lo timestamptz := date_trunc('month', month)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF {PARENT} FOR VALUES FROM (%L) TO (%L)',
                       part, lo, lo + interval '1 month');
        PERFORM nhi_event_partition_local(part);
    END IF;
    RETURN part;
END;
$$ LANGUAGE plpgsql;
"""

GUARD = f"""
CREATE OR REPLACE FUNCTION nhi_guard_audit_drop() RETURNS event_trigger SECURITY DEFINER AS $$
DECLARE
    gone record;
BEGIN
    FOR gone IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'table' LOOP
        IF (gone.object_name = '{PARENT}' OR gone.object_name LIKE '{PARENT}\\_%')
           AND NOT EXISTS (SELECT 1 FROM inventory_archivedpartition a WHERE a.table_name = gone.object_name) THEN
            RAISE EXCEPTION '% holds access events that were not archived: DROP refused', gone.object_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION nhi_guard_audit_alter() RETURNS event_trigger SECURITY DEFINER AS $$
DECLARE
    loose text;
BEGIN
    IF to_regclass('{PARENT}') IS NULL THEN
        RAISE EXCEPTION 'the access events table cannot be renamed or moved' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Partitions keep their names and schema: the checks here and on DROP know them by name.
    SELECT c.relname INTO loose FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = '{PARENT}'::regclass
       AND (c.relname NOT LIKE '{PARENT}\\_%' OR c.relnamespace <> (SELECT relnamespace FROM pg_class
                                                                       WHERE oid = '{PARENT}'::regclass))
     LIMIT 1;
    IF loose IS NOT NULL THEN
        RAISE EXCEPTION 'the access events partition % cannot be renamed or moved', loose
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- A partition detached (it is no longer a partition, yet still here) without the retention job's record.
    SELECT c.relname INTO loose FROM pg_class c
     WHERE c.relname LIKE '{PARENT}\\_%' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND NOT EXISTS (SELECT 1 FROM inventory_archivedpartition a WHERE a.table_name = c.relname)
     LIMIT 1;
    IF loose IS NOT NULL THEN
        RAISE EXCEPTION '% holds access events that were not archived: DETACH refused', loose
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The append-only triggers switched off, to delete or rewrite rows past them.
    SELECT c.relname INTO loose FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE NOT t.tgisinternal AND t.tgenabled = 'D' AND t.tgfoid = 'nhi_refuse_change()'::regprocedure
     LIMIT 1;
    IF loose IS NOT NULL THEN
        RAISE EXCEPTION 'the append-only triggers of % cannot be disabled', loose
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$ LANGUAGE plpgsql;

-- DETACH ... CONCURRENTLY commits its first half before any check at the end of the command could refuse it (the
-- partition is left pending detach, out of every query's sight): refused up front, from the statement's text. The
-- retention job never detaches concurrently.
CREATE OR REPLACE FUNCTION nhi_guard_audit_detach() RETURNS event_trigger SECURITY DEFINER AS $$
BEGIN
    IF current_query() ~* 'detach\\s+partition' AND current_query() ~* 'concurrently|finalize'
       AND current_query() ~* '{PARENT}' THEN
        RAISE EXCEPTION 'access events partitions are not detached concurrently: DETACH refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$ LANGUAGE plpgsql;

DROP EVENT TRIGGER IF EXISTS nhi_guard_audit_detach;
CREATE EVENT TRIGGER nhi_guard_audit_detach ON ddl_command_start WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION nhi_guard_audit_detach();
DROP EVENT TRIGGER IF EXISTS nhi_guard_audit_drop;
CREATE EVENT TRIGGER nhi_guard_audit_drop ON sql_drop EXECUTE FUNCTION nhi_guard_audit_drop();
DROP EVENT TRIGGER IF EXISTS nhi_guard_audit_alter;
CREATE EVENT TRIGGER nhi_guard_audit_alter ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION nhi_guard_audit_alter();
"""

MONTHS_AHEAD = 3


def _one(cursor, sql, params=None):
    cursor.execute(sql, params)
    return cursor.fetchone()[0]


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        if _one(cursor, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [PARENT]) == "p":
            return
        cursor.execute(FUNCTIONS)
        # The next id continues where the old table's sequence stood.
        sequence = _one(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [PARENT])
        cursor.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence}")
        next_id = max(cursor.fetchone()[0], _one(cursor, f"SELECT COALESCE(MAX(id), 0) FROM {PARENT}")) + 1
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid), x.indisunique, x.indisprimary FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass ORDER BY i.relname",
            [PARENT],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'f' ORDER BY conname",
            [PARENT],
        )
        foreign_keys = cursor.fetchall()
        identity = _one(
            cursor, "SELECT attidentity FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'id'", [PARENT]
        )
        if identity:
            cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id DROP IDENTITY")  # drops its sequence
        else:
            cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id DROP DEFAULT")
            cursor.execute(f"DROP SEQUENCE {sequence}")
        cursor.execute(f"CREATE SEQUENCE {PARENT}_id_seq START {next_id}")

        # The old table becomes a partition: its indexes keep serving it under new names.
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {LEGACY}")
        cursor.execute(f"DROP TRIGGER IF EXISTS {PARENT}_append_only ON {LEGACY}")
        local = {"uniq_event_request_id": "request_id", "one_usage_per_decision": "one_usage"}
        shared = []
        for number, (name, definition, unique, primary) in enumerate(indexes):
            if primary:
                cursor.execute(f"ALTER TABLE {LEGACY} RENAME CONSTRAINT {name} TO {LEGACY}_pkey")
            elif unique:
                cursor.execute(f"ALTER INDEX {name} RENAME TO {LEGACY}_{local.get(name, number)}")
            else:
                cursor.execute(f"ALTER INDEX {name} RENAME TO {LEGACY}_{number}")
                shared.append(definition)

        cursor.execute(
            f"CREATE TABLE {PARENT} (LIKE {LEGACY} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) "
            "PARTITION BY RANGE (recorded_at)"
        )
        cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id SET DEFAULT nextval('{PARENT}_id_seq')")
        cursor.execute(f"ALTER SEQUENCE {PARENT}_id_seq OWNED BY {PARENT}.id")
        for name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {name} {definition}")
        for definition in shared:  # written for the old table under its old name, which is now the parent's
            cursor.execute(definition)
        cursor.execute(
            f"CREATE TRIGGER {PARENT}_append_only BEFORE UPDATE OR DELETE ON {PARENT} "
            "FOR EACH ROW EXECUTE FUNCTION nhi_refuse_change()"
        )
        cursor.execute(
            f"CREATE TRIGGER {PARENT}_no_truncate BEFORE TRUNCATE ON {PARENT} "
            "FOR EACH STATEMENT EXECUTE FUNCTION nhi_refuse_change()"
        )

        newest = _one(cursor, f"SELECT MAX(recorded_at) FROM {LEGACY}")
        if newest is None:
            cursor.execute(f"DROP TABLE {LEGACY}")
            first = _one(cursor, "SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")
        else:
            first = _one(
                cursor,
                "SELECT (date_trunc('month', GREATEST(now(), %s) AT TIME ZONE 'UTC') + interval '1 month')::date",
                [newest],
            )
            # DDL takes no parameters: the bound is a date the database itself computed.
            cursor.execute(
                f"ALTER TABLE {PARENT} ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) "
                f"TO ('{first.isoformat()} 00:00:00+00')"
            )
        cursor.execute(
            "SELECT nhi_event_partition((%s::date + make_interval(months => m))::date) "
            "FROM generate_series(0, %s) AS m",
            [first, MONTHS_AHEAD],
        )
        cursor.execute(f"CREATE TABLE {PARENT}_default PARTITION OF {PARENT} DEFAULT")
        cursor.execute("SELECT nhi_event_partition_local(%s)", [f"{PARENT}_default"])

        # The record of dropped partitions is append-only as well.
        for trigger, timing in (("append_only", "UPDATE OR DELETE"), ("no_truncate", "TRUNCATE")):
            level = "STATEMENT" if timing == "TRUNCATE" else "ROW"
            cursor.execute(
                f"CREATE TRIGGER inventory_archivedpartition_{trigger} BEFORE {timing} ON inventory_archivedpartition "
                f"FOR EACH {level} EXECUTE FUNCTION nhi_refuse_change()"
            )
        if _one(cursor, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            cursor.execute(GUARD)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0027_posture_subject_updated_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArchivedPartition",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("table_name", models.CharField(max_length=63, unique=True)),
                (
                    "range_start",
                    models.DateTimeField(help_text="The partition's lower bound (recorded_at), inclusive."),
                ),
                ("range_end", models.DateTimeField(help_text="Its upper bound, exclusive.")),
                ("first_id", models.BigIntegerField(blank=True, null=True)),
                ("last_id", models.BigIntegerField(blank=True, null=True)),
                ("rows", models.PositiveBigIntegerField()),
                (
                    "archives",
                    models.JSONField(default=list, help_text="The archives that hold its rows: [{id, name, sha256}]."),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["range_start"]},
        ),
        # Irreversible in shape only: unapplied, the table stays partitioned, with the same columns Django expects.
        migrations.RunPython(partition, migrations.RunPython.noop),
    ]
