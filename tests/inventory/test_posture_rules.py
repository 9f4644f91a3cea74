"""Issue 16: "pass" only on evidence. One test per rule, through real scans on the real detectors and catalog:

- a tool without subjects of a detector's kind is not_assessed, with the reason;
- a new tool is not_assessed until a scan runs;
- a change to a subject after the last scan makes the control not_assessed until the next scan;
- a supporting link never decides;
- an expiring credential does not fail NHI7;
- the coverage numbers equal a count made here, independently, from the catalog files and the registry.
"""

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.detection import registry
from inventory.detection.scan import scan_create, scan_run
from inventory.models import Attestation, Control, Finding, Framework, FrameworkSnapshot
from inventory.posture import evaluate as posture
from inventory.posture.catalog import CATALOG_DIR
from tests.factories import BindingFactory, CredentialFactory, GrantFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db


def scan():
    scan_run(scan_create().pk)


def result(tool, key, control_id):
    framework = Framework.objects.get(key=key)
    return next(r for r in posture.tool_posture(tool, framework).results if r.control.control_id == control_id)


def clean_credential(identity, **fields):
    """Live, in the vault, with an expiry past the expiring horizon, recently created: no detector objects."""
    return CredentialFactory(identity=identity, expires_at=timezone.now() + timedelta(days=60), **fields)


@pytest.fixture
def clean_tool(owner):
    tool = ToolFactory(owner=owner, slug="clean", enforces_authorization=True)
    identity = IdentityFactory(owner=owner, name="clean-identity")
    BindingFactory(tool=tool, identity=identity)
    clean_credential(identity)
    return tool


def test_a_tool_without_subjects_is_not_assessed_with_its_reason(owner):
    bare = ToolFactory(owner=owner, slug="bare")  # no identity, so no credential, grant or identity to examine
    scan()
    nhi2 = result(bare, "OWASP-NHI-2025", "NHI2")
    expected = ("not_assessed", "no_subjects", "no credentials or prompt templates to examine")
    assert (nhi2.status, nhi2.reason, nhi2.reason_text) == expected
    assert result(bare, "OWASP-NHI-2025", "NHI9").reason_text == "no identities to examine"
    nhi3 = result(bare, "OWASP-NHI-2025", "NHI3")
    assert nhi3.reason_text == "no third-party identities to examine"
    framework = Framework.objects.get(key="OWASP-NHI-2025")
    shown = posture.tool_posture(bare, framework)
    assert shown.passing == 0 and shown.score is None  # nothing passes without evidence


def test_a_new_tool_is_not_assessed_until_a_scan_runs(clean_tool, owner):
    nhi2 = result(clean_tool, "OWASP-NHI-2025", "NHI2")
    assert (nhi2.status, nhi2.reason_text) == ("not_assessed", "not scanned since the tool changed")
    scan()
    assert result(clean_tool, "OWASP-NHI-2025", "NHI2").status == "pass"
    later = ToolFactory(owner=owner, slug="later")  # created after that scan
    identity = IdentityFactory(owner=owner)
    BindingFactory(tool=later, identity=identity)
    clean_credential(identity)
    assert result(later, "OWASP-NHI-2025", "NHI2").reason == "not_scanned"


@pytest.mark.parametrize(
    "change", ["rotate", "new credential", "edit tool", "bind identity", "credential storage", "grant expiry"]
)
def test_a_change_after_the_last_scan_is_not_assessed_until_the_next(clean_tool, owner, change):
    identity = clean_tool.bindings.get().identity
    grant = GrantFactory(identity=identity, tool=clean_tool, expires_at=timezone.now() + timedelta(days=10))
    scan()
    assert result(clean_tool, "OWASP-NHI-2025", "NHI2").status == "pass"
    grant_examined = "CIS-Controls-v8:6.8"  # grant_unused alone decides it (approvals only supports it)
    shown = result(clean_tool, *grant_examined.split(":"))
    assert shown.status == "pass", [(f.detector, f.subject_type) for f in shown.findings]
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        if change == "rotate":
            identity.credentials.update(last_rotated_at=timezone.now())
        elif change == "new credential":
            clean_credential(identity)
        elif change == "credential storage":  # through the API, as its owner: the credential's updated_at moves
            client = APIClient()
            client.force_authenticate(owner)
            credential = identity.credentials.get()
            answer = client.patch(f"/api/v1/credentials/{credential.pk}/", {"storage": "env"}, format="json")
            assert answer.status_code == 200, answer.content
        elif change == "grant expiry":
            grant.expires_at = timezone.now() + timedelta(days=20)
            grant.save()
        elif change == "edit tool":
            clean_tool.description = "Now also reads the wiki."
            clean_tool.save()
        else:
            other = IdentityFactory(owner=owner)
            clean_credential(other)
            BindingFactory(tool=clean_tool, identity=other)
        ref = grant_examined if change == "grant expiry" else "OWASP-NHI-2025:NHI2"
        assert result(clean_tool, *ref.split(":")).reason == "not_scanned"
        scan()
        assert result(clean_tool, *ref.split(":")).status == "pass"
        assert result(clean_tool, "OWASP-NHI-2025", "NHI2").status == "pass"


def test_a_supporting_link_never_decides(clean_tool, owner):
    # identity_reused is primary for NHI9 and supporting for NHI8: sharing the identity with a second tool must fail
    # NHI9 and leave NHI8 to identity_env_mixed (both tools are in production: it passes), with the finding shown.
    second = ToolFactory(owner=owner, slug="second")
    BindingFactory(tool=second, identity=clean_tool.bindings.get().identity)
    scan()
    assert result(clean_tool, "OWASP-NHI-2025", "NHI9").status == "fail"
    nhi8 = result(clean_tool, "OWASP-NHI-2025", "NHI8")
    assert nhi8.status == "pass" and nhi8.findings == []
    assert {f.detector for f in nhi8.related} == {"identity_reused"}
    # No detector is primary for NHI4: a tool without a long-lived secret does not pass it.
    nhi4 = result(clean_tool, "OWASP-NHI-2025", "NHI4")
    assert (nhi4.status, nhi4.reason) == ("not_assessed", "unmapped") and "credential_not_rotated" in nhi4.supporting


def test_an_expiring_credential_does_not_fail_nhi7(owner):
    tool = ToolFactory(owner=owner, slug="short-lived")
    identity = IdentityFactory(owner=owner)
    BindingFactory(tool=tool, identity=identity)
    CredentialFactory(identity=identity, expires_at=timezone.now() + timedelta(days=3))  # no successor
    scan()
    assert Finding.objects.filter(detector="credential_expiring", status="open").exists()
    nhi7 = result(tool, "OWASP-NHI-2025", "NHI7")
    assert nhi7.status == "pass" and nhi7.findings == []
    assert {f.detector for f in nhi7.related} == {"credential_expiring"}
    # A secret that never expires does fail it.
    CredentialFactory(identity=identity, expires_at=None)
    scan()
    assert result(tool, "OWASP-NHI-2025", "NHI7").status == "fail"


def test_tool_unmediated_is_not_nhi10():
    unmediated = registry.get("tool_unmediated")
    assert "OWASP-NHI-2025:NHI10" not in unmediated.controls + unmediated.supporting
    assert registry.get("third_party_unreviewed").controls.count("NIST-CSF-2.0:GV.SC-07") == 1
    assert "NIST-CSF-2.0:GV.SC-06" in registry.get("third_party_unreviewed").supporting
    assert "OWASP-LLM-Top10-2025:LLM07:2025" not in registry.get("secret_exposed").controls


def test_llm07_is_decided_by_the_prompt_case_only(owner):
    from inventory import services

    leaked = "sk-" + "Zq8vN3" * 7  # detect-secrets' high-entropy pattern: a made-up key, never a real one

    def tool_with(slug, **texts):
        tool = ToolFactory(owner=owner, slug=slug)
        services.tool_store_scanned_text(tool=tool, texts=texts)
        identity = IdentityFactory(owner=owner)
        BindingFactory(tool=tool, identity=identity)
        clean_credential(identity)
        return tool

    in_config = tool_with(
        "in-config", prompt_templates="You answer billing questions.", connector_config=f"key: {leaked}"
    )
    in_prompt = tool_with("in-prompt", prompt_templates=f"Use the key {leaked} for billing.")
    no_prompt = tool_with("no-prompt")
    scan()
    llm07 = ("OWASP-LLM-Top10-2025", "LLM07:2025")
    assert result(in_prompt, *llm07).status == "fail"
    assert {f.detector for f in result(in_prompt, *llm07).findings} == {"secret_in_prompt"}
    # A secret in connector text fails the secret controls, but says nothing about the prompt: LLM07 passes there.
    assert result(in_config, *llm07).status == "pass"
    assert result(in_config, "OWASP-NHI-2025", "NHI2").status == "fail"
    absent = result(no_prompt, *llm07)
    assert (absent.status, absent.reason_text) == ("not_assessed", "no prompt templates to examine")


def _independent_counts(key: str) -> tuple[int, int]:
    """(controls in the catalog file, of those cited as primary by a registered detector): read from the files and
    the registry, not from the database or the posture code."""
    document = json.loads((CATALOG_DIR / f"{key}.json").read_text(encoding="utf-8"))
    ids = {c["id"] for c in document["controls"]}
    cited = {ref.split(":", 1)[1] for d in registry.all_detectors() for ref in d.controls if ref.startswith(key + ":")}
    return len(ids), len(ids & cited)


def test_coverage_numbers_equal_an_independent_count(clean_tool, owner, security, page_as):
    bare = ToolFactory(owner=owner, slug="bare")
    Attestation.objects.create(
        tool=bare, control=Control.objects.get(framework__key="NIST-CSF-2.0", control_id="GV.OC-01"),
        attested_by=security, note="Mission statement reviewed", expires_at=timezone.now() + timedelta(days=9),
    )  # fmt: skip
    scan()
    posture.snapshot()
    for framework in Framework.objects.all():
        total, assessable = _independent_counts(framework.key)
        coverage = FrameworkSnapshot.objects.get(framework=framework)
        assert (coverage.controls, coverage.assessable, coverage.not_assessed) == (
            total,
            assessable,
            total - assessable,
        )
        assert coverage.tools == 2
        # Pass and fail counted again from each tool's posture (the page's objects, not the snapshot's SQL).
        shown = [posture.tool_posture(tool, framework) for tool in (clean_tool, bare)]
        assert coverage.passing == sum(p.passing for p in shown) and coverage.failing == sum(p.failing for p in shown)
        assert coverage.unassessed == sum(p.awaiting for p in shown)
        assert coverage.attested == (1 if framework.key == "NIST-CSF-2.0" else 0)
    csf = Framework.objects.get(key="NIST-CSF-2.0")
    total, assessable = _independent_counts(csf.key)
    assert total == 106
    page = page_as("manager").get(reverse("inventory:compliance"), {"framework": csf.key}).content.decode()
    coverage = FrameworkSnapshot.objects.get(framework=csf)
    sentence = (
        f"The portal assesses <strong>{assessable} of 106</strong> {csf.name} controls; of those, "
        f"<strong>{coverage.pass_rate}%</strong> pass across 2 tools"
    )
    assert (
        sentence in page and f"<strong>{106 - assessable}</strong> are not assessed by the portal (1 attested)" in page
    )


@pytest.mark.parametrize("tools", [2, 25])
def test_the_pages_query_counts_do_not_grow_with_tools_or_the_catalog(
    page_as, owner, tools, django_assert_max_num_queries
):
    """The whole SP 800-53 catalog (over a thousand controls) and more tools: the same few queries."""
    for n in range(tools):
        tool = ToolFactory(owner=owner, slug=f"tool-{n}")
        identity = IdentityFactory(owner=owner)
        BindingFactory(tool=tool, identity=identity)
        clean_credential(identity)
    scan()
    posture.snapshot()
    client = page_as("manager")
    tool = Framework.objects.get(key="NIST-SP-800-53r5")
    pages = [
        (reverse("inventory:compliance"), {"framework": "NIST-SP-800-53r5"}),
        (reverse("inventory:compliance"), {"framework": "NIST-SP-800-53r5", "family": "AC"}),
        (reverse("inventory:tool_posture", args=[ToolFactory._meta.model.objects.get(slug="tool-0").pk]),
         {"framework": tool.key, "others": "1"}),
        (reverse("inventory:control_detail", args=[Control.objects.get(framework=tool, control_id="IA-5").pk]), {}),
    ]  # fmt: skip
    for url, params in pages:
        with django_assert_max_num_queries(20):
            response = client.get(url, params)
        assert response.status_code == 200
    page = client.get(reverse("inventory:compliance"), {"framework": "NIST-SP-800-53r5", "family": "AC"})
    assert "AC-1" in page.content.decode()  # the folded family, listed on request


def test_a_control_page_shows_its_crosswalk(page_as):
    ia5 = Control.objects.get(framework__key="NIST-SP-800-53r5", control_id="IA-5")
    page = page_as("manager").get(reverse("inventory:control_detail", args=[ia5.pk])).content.decode()
    crosswalk = page[page.index('id="crosswalk"') :]
    # credential_not_rotated is primary for IA-5, NHI7, PR.AA-01 and A.5.17: the same evidence in other frameworks.
    for control_id in ("NHI7", "PR.AA-01", "A.5.17"):
        assert f"<code>{control_id}</code>" in crosswalk
    assert "<code>NHI4</code>" not in crosswalk  # supporting only: it shares no deciding evidence
