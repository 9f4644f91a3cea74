"""The control catalog data files (inventory/posture/catalogs/*.json) against the IDs checked in the sources.

The expected IDs below were copied from the reference research (reference/controls.json, outside the repo) and
are hard-coded on purpose: a catalog edit that drops, renames or reorders a control must also change this file.
"""

import json
from pathlib import Path

import pytest

CATALOG_DIR = Path(__file__).resolve().parents[2] / "inventory" / "posture" / "catalogs"

EXPECTED_IDS = {
    "OWASP-NHI-2025": ["NHI1", "NHI2", "NHI3", "NHI4", "NHI5", "NHI6", "NHI7", "NHI8", "NHI9", "NHI10"],
    "NIST-CSF-2.0": [
        "GV.RR-02",
        "GV.SC-01",
        "GV.SC-02",
        "GV.SC-03",
        "GV.SC-04",
        "GV.SC-05",
        "GV.SC-06",
        "GV.SC-07",
        "GV.SC-08",
        "GV.SC-09",
        "GV.SC-10",
        "ID.AM-01",
        "ID.AM-02",
        "ID.AM-03",
        "ID.AM-04",
        "ID.AM-05",
        "ID.AM-07",
        "ID.AM-08",
        "ID.RA-07",
        "ID.RA-10",
        "PR.AA-01",
        "PR.AA-02",
        "PR.AA-03",
        "PR.AA-04",
        "PR.AA-05",
        "PR.AA-06",
        "PR.DS-01",
        "PR.DS-02",
        "PR.DS-10",
        "PR.PS-01",
        "PR.PS-04",
        "PR.PS-06",
        "PR.IR-01",
        "DE.CM-01",
        "DE.CM-03",
        "DE.CM-06",
        "DE.CM-09",
    ],
    "NIST-SP-800-207": ["ZT-T1", "ZT-T2", "ZT-T3", "ZT-T4", "ZT-T5", "ZT-T6", "ZT-T7"],
    "OWASP-LLM-Top10-2025": [
        "LLM01:2025",
        "LLM02:2025",
        "LLM03:2025",
        "LLM04:2025",
        "LLM05:2025",
        "LLM06:2025",
        "LLM07:2025",
        "LLM08:2025",
        "LLM09:2025",
        "LLM10:2025",
    ],
    "NIST-SP-800-53r5": [
        "AC-2",
        "AC-2(2)",
        "AC-2(3)",
        "AC-2(9)",
        "AC-2(11)",
        "AC-2(12)",
        "AC-3",
        "AC-5",
        "AC-6",
        "AC-6(7)",
        "AC-6(9)",
        "AC-24",
        "AU-2",
        "AU-3",
        "AU-6",
        "AU-9",
        "AU-10",
        "AU-12",
        "CA-7",
        "CM-2(6)",
        "CM-8",
        "IA-2",
        "IA-4",
        "IA-5",
        "IA-5(1)",
        "IA-5(2)",
        "IA-5(7)",
        "IA-5(13)",
        "IA-8",
        "IA-9",
        "PS-4",
        "PS-5",
        "SA-9",
        "SC-4",
        "SC-12",
        "SC-28",
        "SC-32",
        "SR-3",
        "SR-6",
    ],
    "ISO-IEC-27001-2022-AnnexA": [
        "A.5.3",
        "A.5.9",
        "A.5.15",
        "A.5.16",
        "A.5.17",
        "A.5.18",
        "A.5.19",
        "A.5.20",
        "A.5.21",
        "A.5.22",
        "A.5.23",
        "A.6.5",
        "A.8.2",
        "A.8.3",
        "A.8.5",
        "A.8.9",
        "A.8.12",
        "A.8.15",
        "A.8.16",
        "A.8.24",
        "A.8.31",
    ],
    "CIS-Controls-v8": [
        "3.3",
        "3.11",
        "3.13",
        "5.1",
        "5.2",
        "5.3",
        "5.4",
        "5.5",
        "5.6",
        "6.1",
        "6.2",
        "6.3",
        "6.4",
        "6.5",
        "6.6",
        "6.7",
        "6.8",
        "8.1",
        "8.2",
        "8.5",
        "8.9",
        "8.11",
        "8.12",
        "15.1",
        "15.2",
        "15.3",
        "15.4",
        "15.5",
        "15.6",
        "15.7",
        "16.8",
        "16.12",
    ],
    "OWASP-Agentic-Top10-2026": [
        "ASI01",
        "ASI02",
        "ASI03",
        "ASI04",
        "ASI05",
        "ASI06",
        "ASI07",
        "ASI08",
        "ASI09",
        "ASI10",
    ],
}

# NIST's CSF 1.1 -> 2.0 successor map (relationship "intersect"), for the 1.1 IDs that lead into the catalog.
CSF_1_1_TO_2_0 = {
    "PR.AC-1": ["PR.AA-01", "PR.AA-05"],
    "PR.AC-2": ["PR.AA-06"],
    "PR.AC-3": ["PR.AA-03", "PR.AA-05", "PR.IR-01"],
    "PR.AC-4": ["PR.AA-05"],
    "PR.AC-5": ["PR.IR-01"],
    "PR.AC-6": ["PR.AA-02"],
    "PR.AC-7": ["PR.AA-03"],
    "PR.PT-1": ["PR.PS-04"],
    "PR.PT-4": ["PR.AA-06", "PR.IR-01"],
    "PR.DS-7": ["PR.IR-01"],
    "DE.CM-3": ["DE.CM-03"],
    "DE.CM-6": ["DE.CM-06"],
    "DE.CM-7": ["DE.CM-01", "DE.CM-03", "DE.CM-06", "DE.CM-09"],
    "ID.AM-6": ["GV.RR-02", "GV.SC-02"],
    "ID.SC-2": ["GV.OC-02", "GV.SC-03", "GV.SC-04", "GV.SC-07", "ID.RA-10"],
    "ID.SC-4": ["GV.SC-07", "ID.RA-10"],
}

NHI_TITLES = {
    "NHI1": "Improper Offboarding",
    "NHI2": "Secret Leakage",
    "NHI3": "Vulnerable Third-Party NHI",
    "NHI4": "Insecure Authentication",
    "NHI5": "Overprivileged NHI",
    "NHI6": "Insecure Cloud Deployment Configurations",
    "NHI7": "Long-Lived Secrets",
    "NHI8": "Environment Isolation",
    "NHI9": "NHI Reuse",
    "NHI10": "Human Use of NHI",
}

TOP_LEVEL_KEYS = {
    "key",
    "name",
    "version",
    "catalog_revision",
    "publisher",
    "source",
    "verification",
    "url",
    "controls",
}
CONTROL_KEYS = {"id", "title", "description", "legacy_ids", "order"}


def load(key: str) -> dict:
    return json.loads((CATALOG_DIR / f"{key}.json").read_text(encoding="utf-8"))


def controls_by_id(key: str) -> dict[str, dict]:
    return {control["id"]: control for control in load(key)["controls"]}


def test_one_file_per_framework_and_nothing_else():
    assert sorted(path.stem for path in CATALOG_DIR.glob("*.json")) == sorted(EXPECTED_IDS)


@pytest.mark.parametrize("key", sorted(EXPECTED_IDS))
def test_catalog_ids_match_the_sources_in_order(key):
    data = load(key)
    assert set(data) == TOP_LEVEL_KEYS
    assert data["key"] == key
    assert isinstance(data["catalog_revision"], int)
    assert data["catalog_revision"] >= 1
    for field in ("name", "version", "publisher", "source", "verification"):
        assert isinstance(data[field], str)
        assert data[field].strip(), field
    assert isinstance(data["url"], str)
    assert data["url"] == "" or data["url"].startswith("https://")

    assert [control["id"] for control in data["controls"]] == EXPECTED_IDS[key]
    assert [control["order"] for control in data["controls"]] == list(range(1, len(EXPECTED_IDS[key]) + 1))
    for control in data["controls"]:
        assert set(control) == CONTROL_KEYS, control["id"]
        assert control["title"].strip(), control["id"]
        assert control["description"].strip(), control["id"]
        assert isinstance(control["legacy_ids"], list)
        if key != "NIST-CSF-2.0":
            assert control["legacy_ids"] == [], control["id"]


def test_csf_legacy_ids_follow_the_successor_map():
    csf = controls_by_id("NIST-CSF-2.0")
    for control_id, control in csf.items():
        expected = sorted(old for old, successors in CSF_1_1_TO_2_0.items() if control_id in successors)
        assert control["legacy_ids"] == expected, control_id


def test_csf_known_successors():
    csf = controls_by_id("NIST-CSF-2.0")
    holders_of_pr_ac_1 = {control_id for control_id, control in csf.items() if "PR.AC-1" in control["legacy_ids"]}
    assert holders_of_pr_ac_1 == {"PR.AA-01", "PR.AA-05"}
    assert csf["PR.AA-01"]["legacy_ids"] == ["PR.AC-1"]
    assert csf["PR.AA-05"]["legacy_ids"] == ["PR.AC-1", "PR.AC-3", "PR.AC-4"]
    holders_of_pr_ds_7 = {control_id for control_id, control in csf.items() if "PR.DS-7" in control["legacy_ids"]}
    assert holders_of_pr_ds_7 == {"PR.IR-01"}


def test_csf_has_no_csf_1_1_ids():
    csf = controls_by_id("NIST-CSF-2.0")
    assert "PR.AC-1" not in csf
    assert not set(csf) & set(CSF_1_1_TO_2_0)


def test_csf_physical_access_exists_but_no_detector_cites_it():
    from inventory.detection import registry

    assert controls_by_id("NIST-CSF-2.0")["PR.AA-06"]["title"]
    cited = {ref for detector in registry.all_detectors() for ref in detector.controls}
    assert "NIST-CSF-2.0:PR.AA-06" not in cited


def test_zero_trust_has_tenets_not_800_53_ids():
    zt = load("NIST-SP-800-207")["controls"]
    assert all(control["id"] != "SC-4" for control in zt)
    assert all("SC-4" not in control["title"] for control in zt)
    # SC-4 belongs to SP 800-53, and is about residual data in shared resources.
    assert controls_by_id("NIST-SP-800-53r5")["SC-4"]["title"] == "Information in Shared System Resources"


def test_owasp_nhi_titles_are_the_2025_list():
    assert {control_id: control["title"] for control_id, control in controls_by_id("OWASP-NHI-2025").items()} == (
        NHI_TITLES
    )


def test_every_detector_control_exists_in_the_catalog():
    from inventory.detection import registry

    known = {f"{key}:{control_id}" for key in EXPECTED_IDS for control_id in controls_by_id(key)}
    cited = {ref for detector in registry.all_detectors() for ref in detector.controls}
    assert cited, "no detector is registered"
    missing = sorted(cited - known)
    assert not missing, f"detectors cite controls missing from the catalog: {missing}"
