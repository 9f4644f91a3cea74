"""Property (issues 12, 16): the posture statement (`evaluate._status_sql`, through `control_ranks`, `snapshot`,
`failing_pairs` and `tool_posture`) agrees with the plain-Python reference (`inventory.posture.evaluate_reference`)
over generated worlds, for every status and reason: pass, fail, attested, and not_assessed for no subjects, not
scanned since a change, and unmapped.

The evidence map is generated too (primary and supporting detectors per control, what each detector examines), over
two frameworks of the test's own; the loaded catalog is removed first. Time stands still; change times, run times
and expiries are drawn from a few instants so that ties (a run at the very moment of a change) are generated.
"""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import transaction
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from inventory.detection.registry import examines
from inventory.models import (
    AITool,
    Attestation,
    Control,
    ControlSnapshot,
    Credential,
    DetectorRun,
    Finding,
    Framework,
    FrameworkSnapshot,
    PostureSnapshot,
    ScopeGrant,
    ServiceIdentity,
    ToolIdentity,
)
from inventory.posture import evaluate
from inventory.posture.evaluate_reference import World, failing_reference, snapshot_reference, statuses
from inventory.posture.evidence import Evidence
from tests.factories import IdentityFactory, ScopeFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)
TOOLS = ("t1", "t2", "t3")
IDENTITIES = ("i1", "i2")
REFS = ("REF-A:C1", "REF-A:C2", "REF-A:C3", "REF-A:C4", "REF-B:C1", "REF-B:C2")
DETECTORS = ("d1", "d2", "d3")
# Hours before NOW. Changes and runs share instants, so a run at the very moment of a change is generated.
CHANGES = (-30, -20, -10)
RUNS = (-20, -5, None)
EXPIRIES = {"none": None, "past": -1, "now": 0, "later": 1}
KINDS = (
    examines("tool"),
    examines("identity"),
    examines("identity", third_party=True),
    examines("credential"),
    examines("grant"),
)
REASONS = {
    ("pass", ""),
    ("fail", ""),
    ("attested", ""),
    ("not_assessed", "no_subjects"),
    ("not_assessed", "not_scanned"),
    ("not_assessed", "unmapped"),
}


def at(hours):
    return None if hours is None else NOW + timedelta(hours=hours)


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
credential_spec = st.fixed_dictionaries(
    {
        "identity": st.sampled_from(IDENTITIES),
        "created": st.sampled_from(CHANGES),
        "rotated": st.sampled_from([None, *CHANGES]),
        "expires": st.sampled_from(list(EXPIRIES)),
        "revoked": st.booleans(),
        "updated": st.sampled_from(CHANGES),
    }
)
grant_spec = st.fixed_dictionaries(
    {
        "identity": st.sampled_from(IDENTITIES),
        "granted": st.sampled_from(CHANGES),
        "expires": st.sampled_from(list(EXPIRIES)),
        "status": mostly("active", "revoked"),
        "updated": st.sampled_from(CHANGES),
    }
)
worlds = st.fixed_dictionaries(
    {
        "tools": st.fixed_dictionaries(
            {slug: st.tuples(mostly("active", "pilot", "retired"), st.sampled_from(CHANGES)) for slug in TOOLS}
        ),
        "identities": st.fixed_dictionaries(
            {
                name: st.tuples(mostly("active", "disabled"), st.booleans(), st.sampled_from(CHANGES))
                for name in IDENTITIES
            }
        ),
        "retired": st.sets(st.sampled_from(REFS), max_size=2),
        "primary": st.fixed_dictionaries({ref: st.sets(st.sampled_from(DETECTORS), max_size=2) for ref in REFS}),
        "supporting": st.fixed_dictionaries({ref: st.sets(st.sampled_from(DETECTORS), max_size=2) for ref in REFS}),
        "examined": st.fixed_dictionaries(
            {d: st.sets(st.sampled_from(KINDS), min_size=1, max_size=2) for d in DETECTORS}
        ),
        "runs": st.fixed_dictionaries({d: st.sampled_from(RUNS) for d in DETECTORS}),
        "bindings": st.dictionaries(
            st.tuples(st.sampled_from(TOOLS), st.sampled_from(IDENTITIES)), st.sampled_from(CHANGES), max_size=4
        ),
        "credentials": st.lists(credential_spec, max_size=3),
        "grants": st.lists(grant_spec, max_size=3),
        "findings": st.lists(finding_spec, max_size=4),
        "attestations": st.lists(
            st.tuples(st.sampled_from(TOOLS), st.sampled_from(REFS), st.sampled_from(["past", "now", "later"])),
            max_size=3,
        ),
    }
)
# Every status and reason for t1 and t2 in one world. d1 examines credentials (t1 has one, scanned since), d2
# identities (only t2's, changed after d2's run), d3 grants (nobody has one).
EVERY_STATUS = {
    "tools": {"t1": ("active", -30), "t2": ("active", -30), "t3": ("retired", -30)},
    "identities": {"i1": ("active", False, -30), "i2": ("active", False, -10)},
    "retired": {"REF-A:C4"},
    "primary": {ref: set() for ref in REFS} | {"REF-A:C1": {"d1"}, "REF-A:C2": {"d2"}, "REF-B:C1": {"d3"}},
    "supporting": {ref: set() for ref in REFS} | {"REF-B:C2": {"d1"}},
    "examined": {"d1": {examines("credential")}, "d2": {examines("identity")}, "d3": {examines("grant")}},
    "runs": {"d1": -5, "d2": -20, "d3": -5},
    "bindings": {("t1", "i1"): -30, ("t2", "i2"): -30},
    "credentials": [{"identity": "i1", "created": -30, "rotated": None, "expires": "none", "revoked": False}],
    "grants": [],
    "findings": [{"detector": "d1", "status": "open", "tool": None, "identity": "i2"}],
    "attestations": [("t1", "REF-A:C3", "later"), ("t1", "REF-A:C4", "later"), ("t2", "REF-A:C3", "now")],
}


@pytest.fixture
def skeleton(owner):
    Framework.objects.all().delete()  # the loaded catalog: only the test's own frameworks are evaluated
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
        "scope": ScopeFactory(),
        "security": UserFactory(username="sec", roles=["security"]),
    }


def _evidence(world: dict) -> Evidence:
    primary = {ref: sorted(ds) for ref, ds in world["primary"].items() if ds}
    supporting = {ref: sorted(ds - world["primary"][ref]) for ref, ds in world["supporting"].items() if ds}
    examined = {d: tuple(sorted(kinds, key=repr)) for d, kinds in world["examined"].items()}
    return Evidence(primary, supporting, examined)


def _build(skeleton: dict, world: dict) -> None:
    tools, identities, controls = skeleton["tools"], skeleton["identities"], skeleton["controls"]
    for slug, (status, changed) in world["tools"].items():
        AITool.objects.filter(slug=slug).update(status=status, updated_at=at(changed))
    for name, (status, third_party, changed) in world["identities"].items():
        ServiceIdentity.objects.filter(name=name).update(status=status, third_party=third_party, updated_at=at(changed))
    Control.objects.filter(pk__in=[controls[ref].pk for ref in world["retired"]]).update(retired_at=NOW)
    for (t, i), created in world["bindings"].items():
        ToolIdentity.objects.filter(pk=ToolIdentity.objects.create(tool=tools[t], identity=identities[i]).pk).update(
            created_at=at(created)
        )
    Credential.objects.bulk_create(
        Credential(identity=identities[c["identity"]], kind="api_key", fingerprint=f"fp{n}", last4="abcd",
                   created_at=at(c["created"]), last_rotated_at=at(c["rotated"]), expires_at=at(EXPIRIES[c["expires"]]),
                   revoked_at=NOW if c["revoked"] else None)
        for n, c in enumerate(world["credentials"])
    )  # fmt: skip
    for n, c in enumerate(world["credentials"]):  # auto_now: set past save, as a later change would have
        Credential.objects.filter(fingerprint=f"fp{n}").update(updated_at=at(c.get("updated", c["created"])))
    for n, g in enumerate(world["grants"]):
        # One active grant per identity, scope and resource: the resource keeps them apart.
        ScopeGrant.objects.create(
            identity=identities[g["identity"]], scope=skeleton["scope"], status=g["status"],
            granted_at=at(g["granted"]), expires_at=at(EXPIRIES[g["expires"]]), resource_constraint=f"r{n}",
        )  # fmt: skip
        ScopeGrant.objects.filter(resource_constraint=f"r{n}").update(updated_at=at(g.get("updated", g["granted"])))
    DetectorRun.objects.bulk_create(
        DetectorRun(detector=d, ran_at=at(hours)) for d, hours in world["runs"].items() if hours is not None
    )
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
                    expires_at=at(EXPIRIES[expires]))
        for slug, ref, expires in world["attestations"]
    )  # fmt: skip


def _compare(skeleton: dict, world: dict) -> Counter:
    """Build the world, run the statements and the pages' tool posture, hold them to the reference."""
    evidence = _evidence(world)
    with (
        time_machine.travel(NOW, tick=False),
        mock.patch.object(evaluate, "evidence_map", lambda: evidence),
        transaction.atomic(),
    ):
        _build(skeleton, world)
        reference = World.from_database(NOW, evidence)
        expected = snapshot_reference(reference)
        evaluate.snapshot(day=DAY)
        written = PostureSnapshot.objects.filter(day=DAY).values_list(
            "tool", "framework", "assessed", "failing", "unassessed", "attested"
        )
        assert {(t, f): rest for t, f, *rest in written} == {k: list(v) for k, v in expected["tools"].items()}
        written = ControlSnapshot.objects.filter(day=DAY).values_list(
            "control", "tools_assessed", "tools_failing", "tools_unassessed"
        )
        assert {c: tuple(rest) for c, *rest in written} == expected["controls"]
        written = FrameworkSnapshot.objects.filter(day=DAY).values_list(
            "framework", "controls", "assessable", "attested", "tools", "passing", "failing", "unassessed"
        )
        assert {f: tuple(rest) for f, *rest in written} == expected["frameworks"]

        found = statuses(reference)
        for framework in skeleton["frameworks"].values():
            assert evaluate.failing_pairs(framework) == failing_reference(reference, framework.pk)
            for tool in AITool.objects.filter(slug__in=TOOLS).exclude(status="retired"):
                shown = {r.control.pk: (r.status, r.reason) for r in evaluate.tool_posture(tool, framework).results}
                assert shown == {c: found[tool.pk, c] for t, c in found if t == tool.pk and c in shown}
                assert set(shown) == set(framework.controls.filter(retired_at=None).values_list("pk", flat=True))
        transaction.set_rollback(True)
    return Counter(found.values())


def test_every_status_and_reason_in_one_world(skeleton):
    assert set(_compare(skeleton, EVERY_STATUS)) == REASONS


def test_the_posture_statement_agrees_with_its_reference(skeleton):
    reached = Counter()

    @settings(max_examples=150, deadline=None)
    @given(world=worlds)
    @example(world=EVERY_STATUS)
    def agrees_with_its_reference(world):
        counts = _compare(skeleton, world)
        for found in counts:
            event(str(found))
        reached.update(counts)

    agrees_with_its_reference()
    assert set(reached) == REASONS


def test_every_registered_narrowing_compiles_and_runs(owner):
    """Each Examines a registered detector declares is compiled into the statement; it must run on this database."""
    from tests.factories import BindingFactory, CredentialFactory, GrantFactory

    tool = ToolFactory(owner=owner)
    identity = IdentityFactory(owner=owner)
    BindingFactory(tool=tool, identity=identity)
    CredentialFactory(identity=identity)
    GrantFactory(identity=identity)
    ranks = evaluate.control_ranks(tool=tool)
    assert ranks and set(ranks.values()) <= {evaluate.NO_SUBJECTS, evaluate.NOT_SCANNED}
