"""Property: the COPY path of `inventory.imports.sources.bulk` (PostgreSQL) stores exactly the rows its reference, the
ORM's bulk_create / bulk_update (the path SQLite takes), stores for the same values: identities, credentials,
provenance and audit entries, with generated text (quotes, backslashes, tabs, newlines, any Unicode), JSON (nested,
numbers, nulls) and aware date-times in any offset. A value escaped or encoded differently on one side fails it.

The audit writer is also held to `inventory.audit.record.audit_changes`, row for row, so sealing reads the same.
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.audit.record import ObjectChange, audit_changes
from inventory.imports.sources import bulk
from inventory.models import AuditEntry, Credential, ServiceIdentity, SourceObject
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is the PostgreSQL path"),
]

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# The fixture only supplies an owner's pk; every example runs in a savepoint that is rolled back.
FIXTURE = HealthCheck.function_scoped_fixture
# Any text PostgreSQL stores: everything but NUL (and lone surrogates, which are not UTF-8).
texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30) | st.sampled_from(
    ['a"b', "a'b", "a\\b", "{a,b}", "a,b", "NULL", " padded ", "tab\there", "line\nbreak", ""]
)
short_texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=4)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
identity_rows = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["service_account", "api_key", "oauth_client"]),
        "provider": short_texts,
        "external_id": texts,
        "environment": st.sampled_from(["dev", "prod"]),
        "third_party": st.booleans(),
        "status": st.sampled_from(["active", "disabled"]),
        "last_used_at": st.none() | moments,
        "interactive_use_seen": st.booleans(),
    },
    optional={"last_reviewed_at": st.none() | moments},
)
credential_rows = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["api_key", "certificate", "token"]),
        "fingerprint": texts,
        "last4": short_texts,
        "created_at": moments,
        "expires_at": st.none() | moments,
        "last_used_at": st.none() | moments,
        "revoked_at": st.none() | moments,
    }
)
source_rows = st.fixed_dictionaries(
    {
        "kind": short_texts,
        "account": texts,
        "digest": short_texts,
        "first_seen_at": moments,
        "last_seen_at": moments,
        "gone_at": st.none() | moments,
        "gone_reason": texts,
        "owner_hint": texts,
        "last_use_known": st.booleans(),
        "is_root": st.booleans(),
        "exposed": st.booleans(),
        "legacy_token": st.booleans(),
    },
    optional={"attributes": st.dictionaries(texts, json_values, max_size=4)},
)
changes = st.builds(
    ObjectChange,
    action=short_texts,
    object_type=short_texts,
    object_id=st.integers(1, 2**40) | short_texts,
    label=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=300),
    before=st.none() | st.dictionaries(texts, json_values, max_size=4),
    after=st.dictionaries(texts, json_values, max_size=4),
)


def _stored(model, pks: list[int], *ignore: str) -> list[dict]:
    rows = {row["id"]: row for row in model.objects.filter(pk__in=pks).values()}
    return [{k: v for k, v in rows[pk].items() if k not in ("id", *ignore)} for pk in pks]


def _both(model, rows: list[dict], copy_side: dict, reference_side: dict, *ignore: str):
    """Insert the same rows by COPY and by the reference (each side with its own values for the columns that must be
    unique); what each stored, in the order given, without the columns in `ignore`."""
    copied = bulk.insert(model, [{**row, **copy_side} for row in rows])
    original = bulk._use_copy
    bulk._use_copy = lambda: False
    try:
        referenced = bulk.insert(model, [{**row, **reference_side} for row in rows])
    finally:
        bulk._use_copy = original
    assert len(set(copied) | set(referenced)) == 2 * len(rows)
    return _stored(model, copied, *ignore), _stored(model, referenced, *ignore)


def _rolled_back(check) -> None:
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        check()
        transaction.set_rollback(True)


@pytest.fixture
def owner_pk(db) -> int:
    return UserFactory(username="bulk-owner").pk


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE])
@given(rows=st.lists(identity_rows, min_size=1, max_size=6))
def test_identities_copied_as_the_orm_stores_them(owner_pk, rows):
    def check():
        named = [{**row, "owner_id": owner_pk, "name": f"n{i}"} for i, row in enumerate(rows)]
        copied = bulk.insert(ServiceIdentity, [{**row, "name": "c-" + row["name"]} for row in named])
        original = bulk._use_copy
        bulk._use_copy = lambda: False
        try:
            referenced = bulk.insert(ServiceIdentity, [{**row, "name": "r-" + row["name"]} for row in named])
        finally:
            bulk._use_copy = original
        a, b = _stored(ServiceIdentity, copied, "name"), _stored(ServiceIdentity, referenced, "name")
        assert a == b

    _rolled_back(check)


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE])
@given(
    rows=st.lists(credential_rows, min_size=1, max_size=6, unique_by=lambda row: row["fingerprint"]),
    provenance=st.lists(source_rows, min_size=1, max_size=6),
)
def test_credentials_and_provenance_copied_as_the_orm_stores_them(owner_pk, rows, provenance):
    def check():
        one, other = (
            ServiceIdentity.objects.create(name=name, kind="service_account", owner_id=owner_pk, environment="prod")
            for name in ("i", "j")
        )
        # A fingerprint is unique per identity: each side writes to its own identity.
        copied, referenced = _both(Credential, rows, {"identity_id": one.pk}, {"identity_id": other.pk}, "identity_id")
        assert copied == referenced
        identity = one
        sources = [
            {**row, "provider": "p", "object_type": "identity", "external_id": f"{n}", "identity_id": identity.pk}
            for n, row in enumerate(provenance)
        ]
        # The unique (provider, object_type, external_id): each side gets its own external ids.
        copied = bulk.insert(SourceObject, [{**row, "external_id": "c" + row["external_id"]} for row in sources])
        original = bulk._use_copy
        bulk._use_copy = lambda: False
        try:
            referenced = bulk.insert(
                SourceObject, [{**row, "external_id": "r" + row["external_id"]} for row in sources]
            )
        finally:
            bulk._use_copy = original
        assert _stored(SourceObject, copied, "external_id") == _stored(SourceObject, referenced, "external_id")

    _rolled_back(check)


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE])
@given(first=st.lists(source_rows, min_size=1, max_size=5), then=st.data())
def test_updates_copied_as_the_orm_stores_them(owner_pk, first, then):
    names = then.draw(st.lists(st.sampled_from(sorted(source_rows.wrapped_strategy.mapping)), min_size=1,
                               unique=True), label="names")  # fmt: skip

    def check():
        identity = ServiceIdentity.objects.create(name="i", kind="service_account", owner_id=owner_pk,
                                                  environment="prod")  # fmt: skip
        base = [{**row, "provider": "p", "object_type": "credential", "identity_id": identity.pk} for row in first]
        left = bulk.insert(SourceObject, [{**row, "external_id": f"l{n}"} for n, row in enumerate(base)])
        right = bulk.insert(SourceObject, [{**row, "external_id": f"r{n}"} for n, row in enumerate(base)])
        new_values = [then.draw(source_rows, label="after") for _ in base]
        left_rows = [{"id": pk, **{n: v[n] for n in names}} for pk, v in zip(left, new_values, strict=True)]
        right_rows = [{"id": pk, **{n: v[n] for n in names}} for pk, v in zip(right, new_values, strict=True)]
        bulk.update(SourceObject, left_rows, names)
        original = bulk._use_copy
        bulk._use_copy = lambda: False
        try:
            bulk.update(SourceObject, right_rows, names)
        finally:
            bulk._use_copy = original
        assert _stored(SourceObject, left, "external_id") == _stored(SourceObject, right, "external_id")

    _rolled_back(check)


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE])
@given(entries=st.lists(changes, min_size=1, max_size=6), comment=texts)
def test_audit_entries_are_the_rows_audit_changes_writes(owner_pk, entries, comment):
    def check():
        actor = UserFactory.build(pk=owner_pk, username="bulk-owner")
        start = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        bulk.audit(actor=actor, changes=entries, comment=comment)
        middle = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()
        audit_changes(actor=actor, changes=entries, comment=comment)
        ours = list(AuditEntry.objects.filter(id__gt=start, id__lte=middle).order_by("id").values())
        reference = list(AuditEntry.objects.filter(id__gt=middle).order_by("id").values())
        assert len(ours) == len(reference) == len(entries)
        strip = [{k: v for k, v in row.items() if k != "id"} for row in ours]
        assert strip == [{k: v for k, v in row.items() if k != "id"} for row in reference]
        # In the order given, so the trail reads in the order the import made the changes.
        assert [row["object_repr"] for row in ours] == [change.label[:255] for change in entries]

    _rolled_back(check)


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE])
@given(stored=st.lists(texts, max_size=8, unique=True), asked=st.lists(texts, max_size=8), extra=st.data())
def test_key_lookup_by_array_finds_what_in_finds(owner_pk, stored, asked, extra):
    """`bulk.keyed` (`= ANY(array)`) against `__in`, for keys with quotes, backslashes, braces and commas (what an
    array literal must escape), some stored and some not."""
    asked = asked + extra.draw(st.lists(st.sampled_from(stored), max_size=4) if stored else st.just([]), label="hits")

    def check():
        identity = ServiceIdentity.objects.create(name="i", kind="service_account", owner_id=owner_pk,
                                                  environment="prod")  # fmt: skip
        bulk.insert(SourceObject, [
            {"provider": "p", "object_type": "identity", "external_id": key, "kind": "k", "identity_id": identity.pk,
             "digest": "d", "first_seen_at": NOW, "last_seen_at": NOW} for key in stored
        ])  # fmt: skip
        base = SourceObject.objects.filter(provider="p").order_by("pk")
        found = list(bulk.keyed(base, "external_id", asked).values_list("external_id", flat=True))
        assert found == list(base.filter(external_id__in=asked).values_list("external_id", flat=True))
        assert set(found) == set(stored) & set(asked)

    _rolled_back(check)
