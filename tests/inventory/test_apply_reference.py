"""Property (issue 12): a detector's run in SQL (`inventory.detection.apply`) leaves its findings exactly as the plain-
Python reference (`inventory.detection.apply_reference`) says, field by field, and counts the same changes, over
generated findings and subjects, for every transition: new, reopen, update, resolve and unchanged.

Subjects reach the statements as a detector's querysets do, several rows per subject included; findings of another
detector sit beside them and must not move. A suppression ending at the very moment of the run is generated too.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import BigIntegerField, CharField, Value
from django.db.models.functions import Cast
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from inventory.detection import registry
from inventory.detection.apply import apply_subjects
from inventory.detection.apply_reference import TRANSITIONS, Subject, apply_reference, state, subjects_reference
from inventory.models import AITool, Finding, ToolIdentity
from tests.factories import IdentityFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DETECTOR, OTHER = "under_test", "other_detector"
TOOLS = ("t1", "t2", "t3")
IDENTITIES = ("i1", "i2")
SEVERITIES = ("low", "medium", "high", "critical")
SUPPRESSED_UNTIL = {"none": None, "past": NOW - timedelta(hours=1), "now": NOW, "later": NOW + timedelta(hours=1)}

# Few subjects, so that findings and subjects meet often; a finding's detector is mostly the one that runs.
SUBJECTS = (("tool", 1), ("tool", 2), ("identity", 1), ("identity", 2))
subject_key = st.sampled_from(SUBJECTS)
row = st.tuples(st.sampled_from([*TOOLS, None]), st.sampled_from([*IDENTITIES, None]))
finding_spec = st.fixed_dictionaries(
    {
        "tool": st.sampled_from([*TOOLS, None]),
        "identity": st.sampled_from([*IDENTITIES, None]),
        "severity": st.sampled_from(SEVERITIES),
        # Suppressions lean on ending at the very moment of the run: the edge of `reopen`.
        "status": st.sampled_from(["open", "acknowledged", "suppressed", "suppressed", "resolved"]),
        "suppressed_until": st.sampled_from([*SUPPRESSED_UNTIL, "now"]),
    }
)
worlds = st.fixed_dictionaries(
    {
        "bindings": st.sets(st.tuples(st.sampled_from(TOOLS), st.sampled_from(IDENTITIES)), max_size=3),
        "findings": st.dictionaries(
            st.tuples(st.sampled_from([DETECTOR, DETECTOR, OTHER]), subject_key), finding_spec, min_size=1, max_size=5
        ),
        # Rows as a detector's querysets give them: none, one or several for each subject.
        "rows": st.fixed_dictionaries({key: st.lists(row, max_size=2) for key in SUBJECTS}).map(
            lambda found: [(key, tool, identity) for key, rows in found.items() for tool, identity in rows]
        ),
        "severity": st.sampled_from(SEVERITIES),
        "previous_run": st.sampled_from([None, NOW - timedelta(days=1)]),
    }
)


def _finding(tool, identity="i1", status="open", severity="high", suppressed_until="none"):
    return {"tool": tool, "identity": identity, "severity": severity, "status": status,
            "suppressed_until": suppressed_until}  # fmt: skip


# Every transition in one run: unchanged, update (another tool), reopen (resolved, and a suppression just over),
# resolve (no longer seen), new (shown under the tool its identity is bound to); another detector's finding stays.
EVERY_TRANSITION = {
    "bindings": {("t2", "i1")},
    "findings": {
        (DETECTOR, ("tool", 1)): _finding("t1"),
        (DETECTOR, ("tool", 2)): _finding("t1", status="acknowledged"),
        (DETECTOR, ("tool", 3)): _finding("t3", status="resolved"),
        (DETECTOR, ("identity", 3)): _finding(None, status="suppressed", suppressed_until="now"),
        (DETECTOR, ("identity", 1)): _finding(None),
        (OTHER, ("identity", 1)): _finding(None),
    },
    "rows": [
        (("tool", 1), "t1", "i1"),
        (("tool", 2), "t2", "i1"),
        (("tool", 3), "t3", "i1"),
        (("identity", 3), None, "i1"),
        (("identity", 2), None, "i1"),
        (("identity", 2), None, None),
    ],
    "severity": "high",
    "previous_run": NOW - timedelta(days=1),
}


@pytest.fixture
def skeleton(owner):
    return {
        "tools": {slug: ToolFactory(owner=owner, slug=slug) for slug in TOOLS},
        "identities": {name: IdentityFactory(owner=owner, name=name) for name in IDENTITIES},
        "security": UserFactory(username="sec", roles=["security"]),
    }


def _id(value) -> Cast:
    return Cast(Value(value), output_field=BigIntegerField())


def _detector(world: dict, ids: dict) -> registry.Detector:
    """A detector whose querysets give exactly the generated rows, shaped as `detection.subjects` shapes them."""

    def row(kind: str, pk: int, tool, identity):
        return AITool.objects.order_by().annotate(
            s_type=Value(kind, output_field=CharField()), s_id=_id(pk), s_tool=_id(ids.get(tool)),
            s_identity=_id(ids.get(identity)),
        ).values("s_type", "s_id", "s_tool", "s_identity")  # fmt: skip

    anchor = ids["t1"]
    querysets = [row(kind, pk, tool, identity).filter(pk=anchor) for (kind, pk), tool, identity in world["rows"]]
    nothing = row("tool", 0, None, None).filter(pk=-1)  # a detector always has a query; it may see nothing
    return registry.Detector(
        key=DETECTOR, title="Under test", severity=world["severity"], subject="tool",
        query=lambda context: querysets or [nothing], controls=(), why="", what_to_do="",
    )  # fmt: skip


def _build(skeleton: dict, world: dict, ids: dict) -> None:
    ToolIdentity.objects.bulk_create(
        ToolIdentity(tool=skeleton["tools"][t], identity=skeleton["identities"][i]) for t, i in world["bindings"]
    )
    findings = []
    for (detector, (kind, pk)), spec in world["findings"].items():
        triaged = spec["status"] in ("acknowledged", "suppressed")
        findings.append(
            Finding(
                detector=detector, subject_type=kind, subject_id=pk, tool_id=ids.get(spec["tool"]),
                identity_id=ids.get(spec["identity"]), severity=spec["severity"], status=spec["status"],
                first_seen_at=NOW - timedelta(days=10), recorded_last_seen_at=NOW - timedelta(days=2),
                resolved_at=NOW - timedelta(days=3) if spec["status"] == "resolved" else None,
                acknowledged_at=NOW - timedelta(days=4) if triaged else None,
                acknowledged_by=skeleton["security"] if triaged else None,
                suppressed_until=SUPPRESSED_UNTIL[spec["suppressed_until"]],
                suppress_reason="accepted risk" if spec["suppressed_until"] != "none" else "",
            )
        )  # fmt: skip
    Finding.objects.bulk_create(findings)


def _findings() -> dict:
    return {(f["detector"], f["subject_type"], f["subject_id"]): f for f in map(state, Finding.objects.all())}


def _compare(skeleton: dict, world: dict) -> Counter:
    """Build the world, run the statements, hold them to the reference; nothing of the example outlives it."""
    ids = {name: obj.pk for group in ("tools", "identities") for name, obj in skeleton[group].items()}
    context = registry.Context(now=NOW, thresholds={})
    with transaction.atomic():
        _build(skeleton, world, ids)
        before = _findings()
        rows = [Subject(kind, pk, ids.get(tool), ids.get(identity)) for (kind, pk), tool, identity in world["rows"]]
        bindings = set(ToolIdentity.objects.values_list("tool", "identity"))
        subjects = subjects_reference(rows, bindings)
        expected = apply_reference(
            before.values(), subjects, detector=DETECTOR, severity=world["severity"], now=NOW,
            previous_run=world["previous_run"],
        )  # fmt: skip
        with connection.cursor() as cursor:
            changes = apply_subjects(cursor, _detector(world, ids), context, previous_run=world["previous_run"])
        others = {key: found for key, found in before.items() if key[0] != DETECTOR}
        wanted = others | {(DETECTOR, *key): found for key, found in expected.findings.items()}
        written = _findings()
        for key in wanted.keys() | written.keys():
            assert written.get(key) == wanted.get(key), (key, expected.transitions.get(key[1:]))
        counts = {"inserted": changes.inserted, "reopened": changes.reopened, "resolved": changes.resolved}
        assert (changes.seen, counts) == (len(subjects), expected.counts())
        transaction.set_rollback(True)
    return Counter(expected.transitions.values())


def test_every_transition_in_one_run(skeleton):
    assert set(_compare(skeleton, EVERY_TRANSITION)) == set(TRANSITIONS)


def test_apply_agrees_with_its_reference(skeleton):
    reached = Counter()

    @settings(max_examples=150, deadline=None)
    @given(world=worlds)
    @example(world=EVERY_TRANSITION)
    def agrees_with_its_reference(world):
        taken = _compare(skeleton, world)
        for change in taken:
            event(change)
        reached.update(taken)

    agrees_with_its_reference()
    assert set(reached) == set(TRANSITIONS)
