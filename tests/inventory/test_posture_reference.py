"""Property (issue 12): the posture statements (`evaluate.snapshot`, `evaluate.failing_pairs`) and the tool posture the
pages show agree with the plain-Python reference (`inventory.posture.evaluate_reference`) over generated worlds, for
every status: pass, fail, not_assessed and attested.

The detector-to-control mapping is generated too, over two frameworks of the test's own; the loaded catalog's
controls are then mapped to nothing. Time stands still, so an attestation expiring at the very moment is generated.
"""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import transaction
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from inventory.models import (
    AITool,
    Attestation,
    Control,
    ControlSnapshot,
    Finding,
    Framework,
    PostureSnapshot,
    ToolIdentity,
)
from inventory.posture import evaluate
from inventory.posture.evaluate_reference import (
    STATUSES,
    World,
    failing_reference,
    snapshot_reference,
    statuses,
)
from tests.factories import IdentityFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)
TOOLS = ("t1", "t2", "t3")
IDENTITIES = ("i1", "i2")
REFS = ("REF-A:C1", "REF-A:C2", "REF-A:C3", "REF-A:C4", "REF-B:C1", "REF-B:C2")
DETECTORS = ("d1", "d2", "d3")
EXPIRIES = {"past": -3600, "now": 0, "later": 3600}


def mostly(common, *rare):
    return st.sampled_from([common] * 4 + list(rare))


finding_spec = st.fixed_dictionaries(
    {
        "detector": st.sampled_from([*DETECTORS, "unmapped"]),
        "status": st.sampled_from(["open", "acknowledged", "suppressed", "resolved"]),
        "tool": st.sampled_from([*TOOLS, None]),
        "identity": st.sampled_from([*IDENTITIES, None]),
    }
)
worlds = st.fixed_dictionaries(
    {
        "tools": st.fixed_dictionaries({slug: mostly("active", "pilot", "retired") for slug in TOOLS}),
        "retired": st.sets(st.sampled_from(REFS), max_size=2),
        "mapping": st.fixed_dictionaries({ref: st.sets(st.sampled_from(DETECTORS), max_size=2) for ref in REFS}),
        "bindings": st.sets(st.tuples(st.sampled_from(TOOLS), st.sampled_from(IDENTITIES)), max_size=3),
        "findings": st.lists(finding_spec, max_size=5),
        "attestations": st.lists(
            st.tuples(st.sampled_from(TOOLS), st.sampled_from(REFS), st.sampled_from(list(EXPIRIES))), max_size=4
        ),
    }
)
# Every status for t1 in one world: C1 fails (d1 open on t1), C2 passes, C3 is attested, REF-B's are not assessed;
# C4, retired, has an attestation that must not count.
EVERY_STATUS = {
    "tools": dict.fromkeys(TOOLS, "active"),
    "retired": {"REF-A:C4"},
    "mapping": {ref: set() for ref in REFS} | {"REF-A:C1": {"d1"}, "REF-A:C2": {"d2"}},
    "bindings": {("t2", "i1")},
    "findings": [
        {"detector": "d1", "status": "open", "tool": "t1", "identity": None},
        {"detector": "d2", "status": "acknowledged", "tool": None, "identity": "i1"},
    ],
    "attestations": [("t1", "REF-A:C3", "later"), ("t1", "REF-A:C4", "later"), ("t2", "REF-A:C3", "now")],
}


@pytest.fixture
def skeleton(owner):
    frameworks = {key: Framework.objects.create(key=key, name=key, version="1") for key in ("REF-A", "REF-B")}
    controls = {}
    for order, ref in enumerate(REFS):
        key, control_id = ref.split(":")
        controls[ref] = Control.objects.create(framework=frameworks[key], control_id=control_id, title=ref, order=order)
    return {
        "frameworks": frameworks,
        "controls": controls,
        "tools": {slug: ToolFactory(owner=owner, slug=slug) for slug in TOOLS},
        "identities": {name: IdentityFactory(owner=owner, name=name) for name in IDENTITIES},
        "security": UserFactory(username="sec", roles=["security"]),
    }


def _build(skeleton: dict, world: dict) -> None:
    tools, identities, controls = skeleton["tools"], skeleton["identities"], skeleton["controls"]
    for slug, status in world["tools"].items():
        AITool.objects.filter(slug=slug).update(status=status)
    Control.objects.filter(pk__in=[controls[ref].pk for ref in world["retired"]]).update(retired_at=NOW)
    ToolIdentity.objects.bulk_create(ToolIdentity(tool=tools[t], identity=identities[i]) for t, i in world["bindings"])
    Finding.objects.bulk_create(
        Finding(
            detector=spec["detector"], subject_type="tool", subject_id=n, severity="high", status=spec["status"],
            tool=tools.get(spec["tool"]), identity=identities.get(spec["identity"]), first_seen_at=NOW,
            recorded_last_seen_at=NOW,
        )
        for n, spec in enumerate(world["findings"])
    )  # fmt: skip
    Attestation.objects.bulk_create(
        Attestation(tool=tools[slug], control=controls[ref], attested_by=skeleton["security"], note="checked",
                    expires_at=NOW + timedelta(seconds=EXPIRIES[expires]))
        for slug, ref, expires in world["attestations"]
    )  # fmt: skip


def _compare(skeleton: dict, world: dict) -> Counter:
    """Build the world, run the statements and the pages' tool posture, hold them to the reference."""
    mapping = {ref: sorted(detectors) for ref, detectors in world["mapping"].items() if detectors}
    with (
        time_machine.travel(NOW, tick=False),
        mock.patch.object(evaluate, "detectors_by_control", lambda: mapping),
        transaction.atomic(),
    ):
        _build(skeleton, world)
        reference = World.from_database(NOW, mapping)
        expected_tools, expected_controls = snapshot_reference(reference)
        evaluate.snapshot(day=DAY)
        written = PostureSnapshot.objects.filter(day=DAY).values_list("tool", "framework", "assessed", "failing")
        assert {(t, f): (a, n) for t, f, a, n in written} == expected_tools
        written = ControlSnapshot.objects.filter(day=DAY).values_list("control", "tools_assessed", "tools_failing")
        assert {c: (a, n) for c, a, n in written} == expected_controls

        found = statuses(reference)
        for framework in skeleton["frameworks"].values():
            assert evaluate.failing_pairs(framework) == failing_reference(reference, framework.pk)
            for tool in AITool.objects.filter(slug__in=TOOLS):
                shown = {r.control.pk: r.status for r in evaluate.tool_posture(tool, framework).results}
                assert shown == {c: found[tool.pk, c] for t, c in found if t == tool.pk and c in shown}
                assert set(shown) == set(framework.controls.filter(retired_at=None).values_list("pk", flat=True))
        transaction.set_rollback(True)
    ours = {c.pk for c in skeleton["controls"].values()}
    return Counter(status for (_, control), status in found.items() if control in ours)


def test_every_status_in_one_world(skeleton):
    assert set(_compare(skeleton, EVERY_STATUS)) == set(STATUSES)


def test_the_posture_statements_agree_with_their_reference(skeleton):
    reached = Counter()

    @settings(max_examples=120, deadline=None)
    @given(world=worlds)
    @example(world=EVERY_STATUS)
    def agrees_with_its_reference(world):
        counts = _compare(skeleton, world)
        for status in counts:
            event(status)
        reached.update(counts)

    agrees_with_its_reference()
    assert set(reached) == set(STATUSES)
