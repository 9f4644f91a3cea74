"""The control catalog data files (inventory/posture/catalogs/*.json) against the reference research.

tests/inventory/catalog_reference/ holds a copy of the reference files (controls.json and the whole-catalog files
for NIST CSF 2.0, SP 800-53 Rev. 5 and ISO/IEC 27001:2022 Annex A), unchanged: a catalog edit that drops, renames or
reorders a control fails here unless the reference says so too. Shipped IDs and titles must equal it exactly.
"""

import json
from pathlib import Path

import pytest

CATALOG_DIR = Path(__file__).resolve().parents[2] / "inventory" / "posture" / "catalogs"
REFERENCE_DIR = Path(__file__).resolve().parent / "catalog_reference"

# The small lists come from controls.json; the whole catalogs from their own files.
SMALL = ("OWASP-NHI-2025", "NIST-SP-800-207", "OWASP-LLM-Top10-2025", "OWASP-Agentic-Top10-2026", "CIS-Controls-v8")
WHOLE = {
    "NIST-CSF-2.0": "nist-csf-2.0.json",
    "NIST-SP-800-53r5": "nist-sp-800-53r5.json",
    "ISO-IEC-27001-2022-AnnexA": "iso-iec-27001-2022-annex-a.json",
}
SIZES = {
    "OWASP-NHI-2025": 10, "NIST-CSF-2.0": 106, "NIST-SP-800-207": 7, "OWASP-LLM-Top10-2025": 10,
    "NIST-SP-800-53r5": 1007, "ISO-IEC-27001-2022-AnnexA": 93, "CIS-Controls-v8": 32, "OWASP-Agentic-Top10-2026": 10,
}  # fmt: skip
TOP_LEVEL_KEYS = {"key", "name", "version", "catalog_revision", "publisher", "source", "verification", "url"}
TOP_LEVEL_KEYS |= {"groups", "controls"}
CONTROL_KEYS = {"id", "title", "description", "legacy_ids", "order", "group"}


def load(key: str) -> dict:
    return json.loads((CATALOG_DIR / f"{key}.json").read_text(encoding="utf-8"))


def reference(name: str) -> dict:
    return json.loads((REFERENCE_DIR / name).read_text(encoding="utf-8"))


def controls_by_id(key: str) -> dict[str, dict]:
    return {control["id"]: control for control in load(key)["controls"]}


def expected_rows(key: str) -> list[tuple[str, str, str, list[str]]]:
    """(id, title, group, legacy ids) in the reference's order."""
    if key in SMALL:
        return [(c["id"], c["title"], None, []) for c in reference("controls.json")["frameworks"][key]["controls"]]
    whole = reference(WHOLE[key])
    if key == "NIST-CSF-2.0":  # NIST publishes outcomes, not titles: the outcome is the title
        return [(s["id"], s["outcome"], s["category"], s["csf_1_1_predecessors"]) for s in whole["subcategories"]]
    group = "family" if key == "NIST-SP-800-53r5" else "theme"
    return [(c["id"], c["title"], c[group], []) for c in whole["controls"]]


def test_one_file_per_framework_and_nothing_else():
    assert sorted(path.stem for path in CATALOG_DIR.glob("*.json")) == sorted(SIZES)


@pytest.mark.parametrize("key", sorted(SIZES))
def test_every_id_and_title_equals_the_reference_in_order(key):
    data = load(key)
    assert set(data) == TOP_LEVEL_KEYS
    assert data["key"] == key and isinstance(data["catalog_revision"], int) and data["catalog_revision"] >= 2
    for name in ("name", "version", "publisher", "source", "verification"):
        assert isinstance(data[name], str) and data[name].strip(), name
    assert data["url"].startswith("https://")
    rows = expected_rows(key)
    assert len(rows) == SIZES[key]
    assert [(c["id"], c["title"]) for c in data["controls"]] == [(i, t) for i, t, _, _ in rows]
    assert [c["order"] for c in data["controls"]] == list(range(1, len(rows) + 1))
    for control, (_, _, group, legacy) in zip(data["controls"], rows, strict=True):
        assert set(control) == CONTROL_KEYS, control["id"]
        assert control["legacy_ids"] == legacy, control["id"]
        if group is not None:
            assert control["group"] == group, control["id"]
        assert not control["group"] or control["group"] in data["groups"], control["id"]


@pytest.mark.parametrize("key", sorted(SIZES))
def test_source_and_verification_are_the_publication_citations(key):
    data = load(key)
    cited = reference(WHOLE[key]) if key in WHOLE else reference("controls.json")["frameworks"][key]
    assert (data["source"], data["verification"]) == (cited["source"], cited["verification"])
    assert "github:" not in data["source"] and "find_string" not in data["source"]


def test_group_names_are_the_reference_ones():
    assert load("NIST-SP-800-53r5")["groups"] == reference(WHOLE["NIST-SP-800-53r5"])["families"]
    assert load("ISO-IEC-27001-2022-AnnexA")["groups"] == reference(WHOLE["ISO-IEC-27001-2022-AnnexA"])["themes"]
    csf = reference(WHOLE["NIST-CSF-2.0"])
    assert set(load("NIST-CSF-2.0")["groups"]) == set(csf["categories"])
    for category, name in load("NIST-CSF-2.0")["groups"].items():
        assert name.startswith(csf["categories"][category])


def test_csf_predecessors_are_complete_and_pr_ac_1_leads_to_its_two_successors():
    csf = controls_by_id("NIST-CSF-2.0")
    holders = {control_id for control_id, control in csf.items() if "PR.AC-1" in control["legacy_ids"]}
    assert holders == {"PR.AA-01", "PR.AA-05"}
    assert sum(1 for control in csf.values() if control["legacy_ids"]) == 90  # 16 subcategories are new in 2.0
    assert "PR.AC-1" not in csf  # a CSF 1.1 id, never a 2.0 one


def test_tenet_4_is_whole():
    tenet = controls_by_id("NIST-SP-800-207")["ZT-T4"]["title"]
    assert tenet.startswith("Access to resources is determined by dynamic policy—including the observable state")
    assert tenet.endswith("and may include other behavioral and environmental attributes")


def test_zero_trust_has_tenets_not_800_53_ids():
    assert "SC-4" not in controls_by_id("NIST-SP-800-207")
    assert controls_by_id("NIST-SP-800-53r5")["SC-4"]["title"] == "Information in Shared System Resources"


def test_every_detector_control_exists_and_physical_access_is_never_cited():
    from inventory.detection import registry

    known = {f"{key}:{control_id}" for key in SIZES for control_id in controls_by_id(key)}
    detectors = registry.all_detectors()
    assert detectors, "no detector is registered"
    primary = {ref for detector in detectors for ref in detector.controls}
    supporting = {ref for detector in detectors for ref in detector.supporting}
    assert not sorted(primary - known), "primary controls missing from the catalog"
    assert not sorted(supporting - known), "supporting controls missing from the catalog"
    assert "NIST-CSF-2.0:PR.AA-06" not in primary | supporting
