"""Posture: the catalog loads idempotently, every detector maps to the three core frameworks, controls pass, fail
or are not assessed, attestations expire, snapshots are set-based, and managers read without changing anything."""

import csv
import json
import shutil
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.detection import registry
from inventory.detection.scan import scan_create, scan_run
from inventory.models import Attestation, Control, ControlSnapshot, Framework, PostureSnapshot
from inventory.posture import evaluate as posture
from inventory.posture.catalog import CATALOG_DIR, load_frameworks
from tests.factories import BindingFactory, CredentialFactory, IdentityFactory, TeamFactory, ToolFactory

pytestmark = pytest.mark.django_db

CORE = ("OWASP-NHI-2025", "NIST-CSF-2.0", "NIST-SP-800-207")


def test_catalog_loads_idempotently():
    first = load_frameworks()  # the migration loaded it already
    assert not first.changed and first.unchanged == Control.objects.count() > 150
    assert Framework.objects.count() == 8


def test_a_new_revision_adds_updates_and_retires_without_losing_history(tmp_path):
    for path in CATALOG_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    target = tmp_path / "OWASP-NHI-2025.json"
    document = json.loads(target.read_text())
    document["catalog_revision"] += 1
    dropped = document["controls"].pop()  # NHI10 leaves the list
    document["controls"][0]["title"] = "Improper Offboarding (revised)"
    document["controls"].append({"id": "NHI11", "title": "A new risk", "description": "New.", "legacy_ids": []})
    target.write_text(json.dumps(document))
    result = load_frameworks(directory=tmp_path)
    assert (result.controls_created, result.controls_updated, result.controls_retired) == (1, 1, 1)
    retired = Control.objects.get(framework__key="OWASP-NHI-2025", control_id=dropped["id"])
    assert retired.retired_at is not None
    assert Framework.objects.get(key="OWASP-NHI-2025").catalog_revision == document["catalog_revision"]
    assert not load_frameworks(directory=tmp_path).changed


@pytest.mark.parametrize("detector", registry.all_detectors(), ids=lambda d: d.key)
def test_every_detector_maps_to_controls_that_exist(detector):
    """Primary and supporting controls are in the loaded catalog; nothing is both; a detector without a primary
    control (credential_expiring, fact_change_unreviewed) is related evidence only and decides nothing."""
    known = set(Control.objects.values_list("framework__key", "control_id"))
    for ref in detector.controls + detector.supporting:
        assert tuple(ref.split(":", 1)) in known, ref
    assert not set(detector.controls) & set(detector.supporting)
    assert detector.controls or detector.supporting


@pytest.fixture
def leaky_tool(owner):
    tool = ToolFactory(owner=owner, slug="leaky", enforces_authorization=True)
    identity = IdentityFactory(owner=owner)
    BindingFactory(tool=tool, identity=identity)
    CredentialFactory(identity=identity, storage="prompt", expires_at=timezone.now() + timedelta(days=30))
    scan_run(scan_create().pk)
    return tool


def _status(tool, key, control_id):
    result = posture.tool_posture(tool, Framework.objects.get(key=key))
    return next(r for r in result.results if r.control.control_id == control_id)


def test_pass_fail_and_not_assessed(leaky_tool, owner):
    nhi2 = _status(leaky_tool, "OWASP-NHI-2025", "NHI2")  # secret leakage: the credential sits in a prompt
    assert nhi2.status == "fail" and {f.detector for f in nhi2.findings} == {"secret_in_prompt"}
    assert _status(leaky_tool, "OWASP-NHI-2025", "NHI9").status == "pass"  # not reused
    assert _status(leaky_tool, "OWASP-NHI-2025", "NHI6").status == "not_assessed"  # no detector: never a pass
    clean = ToolFactory(owner=owner)  # no identities: nothing to examine is no evidence (it used to pass NHI2)
    assert _status(clean, "OWASP-NHI-2025", "NHI2").status == "not_assessed"


def test_attestation_counts_until_it_expires(leaky_tool, security):
    control = Control.objects.get(framework__key="OWASP-NHI-2025", control_id="NHI6")
    attestation = Attestation.objects.create(
        tool=leaky_tool, control=control, attested_by=security, note="Reviewed cloud config",
        expires_at=timezone.now() + timedelta(days=30),
    )  # fmt: skip
    assert _status(leaky_tool, "OWASP-NHI-2025", "NHI6").status == "attested"
    Attestation.objects.filter(pk=attestation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _status(leaky_tool, "OWASP-NHI-2025", "NHI6").status == "not_assessed"


def test_attest_page_refuses_assessed_controls_and_non_security(page_as, leaky_tool):
    assessed = Control.objects.get(framework__key="OWASP-NHI-2025", control_id="NHI2")
    unassessed = Control.objects.get(framework__key="OWASP-NHI-2025", control_id="NHI6")
    url = reverse("inventory:attest", args=[leaky_tool.pk])
    body = {"note": "checked", "expires_at": (timezone.localdate() + timedelta(days=30)).isoformat()}
    assert page_as("manager").post(url, body | {"control": unassessed.pk}).status_code == 403
    assert page_as("owner").post(url, body | {"control": unassessed.pk}).status_code == 403
    page_as("security").post(url, body | {"control": assessed.pk})
    assert not Attestation.objects.exists()
    page_as("security").post(url, body | {"control": unassessed.pk})
    assert Attestation.objects.filter(control=unassessed, tool=leaky_tool).count() == 1


def test_snapshot_writes_tool_and_control_rows(leaky_tool):
    result = posture.snapshot()
    nhi = Framework.objects.get(key="OWASP-NHI-2025")
    row = PostureSnapshot.objects.get(tool=leaky_tool, framework=nhi)
    shown = posture.tool_posture(leaky_tool, nhi)
    assert row.failing >= 1 and row.assessed == shown.assessed
    assert (row.unassessed, row.attested) == (shown.awaiting, shown.attested)
    assert row.failing == sum(r.status == "fail" for r in posture.tool_posture(leaky_tool, nhi).results)
    nhi2 = ControlSnapshot.objects.get(control__framework=nhi, control__control_id="NHI2")
    assert nhi2.tools_failing == 1
    assert result["posture_rows"] == PostureSnapshot.objects.count()
    posture.snapshot()  # same day again: rows are rewritten, not duplicated
    assert PostureSnapshot.objects.count() == result["posture_rows"]


@pytest.mark.parametrize("tools", [3, 60])
def test_snapshot_query_count_is_constant(owner, tools, django_assert_max_num_queries):
    for _ in range(tools):
        tool = ToolFactory(owner=owner)
        identity = IdentityFactory(owner=owner, interactive_use_seen=True)
        BindingFactory(tool=tool, identity=identity)
    scan_run(scan_create().pk)
    with django_assert_max_num_queries(14):
        posture.snapshot()
    assert PostureSnapshot.objects.values("tool").distinct().count() == tools


READERS = [
    ("anonymous", 302),
    ("owner", 403),
    ("other_owner", 403),
    ("security", 200),
    ("manager", 200),
    ("gateway", 403),
]


@pytest.mark.parametrize("name", ["inventory:compliance", "inventory:compliance_export", "inventory:compliance_report"])
@pytest.mark.parametrize(("role", "status"), READERS)
def test_compliance_pages_are_for_managers_and_security(page_as, leaky_tool, name, role, status):
    posture.snapshot()
    response = page_as(role).get(reverse(name))
    assert response.status_code == status


def test_overview_content_and_csv(page_as, leaky_tool):
    posture.snapshot()
    page = page_as("manager").get(reverse("inventory:compliance"), {"framework": "NIST-CSF-2.0"}).content.decode()
    assert "NIST Cybersecurity Framework" in page and "PR.AC-1" in page  # legacy id beside its successor
    csv_lines = (
        b"".join(
            page_as("manager")
            .get(reverse("inventory:compliance_export"), {"framework": "OWASP-NHI-2025"})
            .streaming_content
        )
        .decode()
        .splitlines()
    )
    rows = list(csv.reader(csv_lines))
    # Names beside the ids: the tool's name after its slug, each control's title after its id.
    header = [cell.split(" ", 1)[0] if n >= 4 else cell for n, cell in enumerate(rows[0])]
    assert rows[0][:4] == ["tool", "tool name", "team", "environment"] and "NHI2 Secret Leakage" in rows[0]
    leaky_row = next(row for row in rows if row[0] == "leaky")
    assert leaky_row[header.index("NHI2")] == "fail" and leaky_row[header.index("NHI6")] == "not_assessed: unmapped"


def test_control_page_lists_failing_tools(page_as, leaky_tool):
    control = Control.objects.get(framework__key="OWASP-NHI-2025", control_id="NHI2")
    page = page_as("manager").get(reverse("inventory:control_detail", args=[control.pk])).content.decode()
    assert leaky_tool.name in page and "secret_in_prompt" in page


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("other_owner", 404), ("manager", 200), ("gateway", 403)])
def test_tool_posture_tab(page_as, leaky_tool, role, status):
    assert page_as(role).get(reverse("inventory:tool_posture", args=[leaky_tool.pk])).status_code == status


def test_api(api_as, leaky_tool):
    posture.snapshot()
    frameworks = api_as("owner").get("/api/v1/frameworks/").json()["results"]
    assert {f["key"] for f in frameworks} >= set(CORE)
    nhi = next(f for f in frameworks if f["key"] == "OWASP-NHI-2025")
    detail = api_as("owner").get(f"/api/v1/frameworks/{nhi['id']}/").json()
    nhi2 = next(c for c in detail["controls"] if c["id"] == "NHI2")
    assert nhi2["pass_rate"] == 0.0 and nhi2["assessed"] is True
    tool_posture = api_as("owner").get(f"/api/v1/tools/{leaky_tool.pk}/posture/?framework=OWASP-NHI-2025").json()
    controls = {c["id"]: c["status"] for c in tool_posture["frameworks"][0]["controls"]}
    assert controls["NHI2"] == "fail" and controls["NHI6"] == "not_assessed"
    assert api_as("other_owner").get(f"/api/v1/tools/{leaky_tool.pk}/posture/").status_code == 404
    assert api_as("anonymous").get("/api/v1/frameworks/").status_code == 401
    assert api_as("manager").post("/api/v1/frameworks/", {}).status_code == 403


def test_overview_totals_and_breakdowns_add_up_per_team_and_environment(page_as, owner):
    red, blue = TeamFactory(name="Red"), TeamFactory(name="Blue")
    for team, environment in [(red, "prod"), (red, "dev"), (blue, "prod"), (None, "staging")]:
        tool = ToolFactory(owner=owner, team=team, environment=environment)
        identity = IdentityFactory(owner=owner)
        BindingFactory(tool=tool, identity=identity)
        CredentialFactory(identity=identity, storage="prompt")
    scan_run(scan_create().pk)
    posture.snapshot()
    framework = Framework.objects.get(key="OWASP-NHI-2025")
    snaps = list(PostureSnapshot.objects.filter(framework=framework).select_related("tool__team"))

    def rate(rows):
        assessed, failing = sum(s.assessed for s in rows), sum(s.failing for s in rows)
        return round(100 * (assessed - failing) / assessed, 1)

    context = page_as("manager").get(reverse("inventory:compliance"), {"framework": framework.key}).context
    assert context["tools"] == 4 and context["pass_rate"] == rate(snaps)
    team_of = {s.tool_id: s.tool.team.name if s.tool.team else None for s in snaps}
    expected_teams = [
        (name or "—", len(rows), rate(rows))
        for name in ("Blue", "Red", None)
        for rows in [[s for s in snaps if team_of[s.tool_id] == name]]
    ]
    assert context["by_team"] == expected_teams
    assert [(label, n) for label, n, _ in context["by_env"]] == [("Development", 1), ("Production", 2), ("Staging", 1)]
