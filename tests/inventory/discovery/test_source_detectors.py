"""What the sources reveal, found by the detectors: each against the imported fixtures, and what must not trip it."""

from datetime import UTC, datetime

import pytest
import time_machine

from inventory.detection.scan import scan_create, scan_run
from inventory.imports.sources.sync import source_import
from inventory.models import Credential, Finding, ServiceIdentity, SourceObject
from tests.inventory.discovery.helpers import HOME_TENANT, fixture

pytestmark = pytest.mark.django_db
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def imported(security, *kinds: str) -> None:
    with time_machine.travel(NOW, tick=False):
        for kind in kinds:
            source_import(actor=security, kind=kind, raw=fixture(kind), account=HOME_TENANT)


def found(key: str) -> set[tuple[str, int]]:
    with time_machine.travel(NOW, tick=False):
        scan = scan_run(scan_create(detectors=[key]).pk)
    assert "error" not in scan.counts[key], scan.counts[key]
    return set(Finding.objects.filter(detector=key).unresolved().values_list("subject_type", "subject_id"))


def cred(external_id: str) -> tuple[str, int]:
    return ("credential", SourceObject.objects.get(object_type="credential", external_id=external_id).credential_id)


def ident(external_id: str) -> tuple[str, int]:
    return ("identity", ServiceIdentity.objects.get(external_id=external_id).pk)


ROOT = "arn:aws:iam::123456789012:root"


def test_root_access_key_active_is_critical(security):
    imported(security, "aws-credential-report")
    root_key = Credential.objects.get(identity__external_id=ROOT)
    assert found("source_root_key_active") == {("credential", root_key.pk)}
    assert Finding.objects.get(detector="source_root_key_active").severity == "critical"


def test_two_active_keys_on_one_user(security):
    imported(security, "aws-credential-report")
    assert found("source_two_active_keys") == {ident("arn:aws:iam::123456789012:user/ci-deployer")}


def test_exposed_gcp_key(security):
    imported(security, "gcp-service-account-keys")
    assert found("source_key_exposed") == {
        cred("projects/acme-prod/serviceAccounts/leaky@acme-prod.iam.gserviceaccount.com/keys/ff00")
    }


def test_pat_without_expiry(security):
    imported(security, "github-fine-grained-pats")
    assert found("source_pat_no_expiry") == {cred("pat:502#token")}


def test_entra_secret_expiring(security):
    imported(security, "entra-service-principals")
    assert found("source_secret_expiring") == set()
    with time_machine.travel(datetime(2029, 12, 20, tzinfo=UTC), tick=False):
        scan = scan_run(scan_create(detectors=["source_secret_expiring"]).pk)
    assert scan.counts["source_secret_expiring"]
    subjects = set(Finding.objects.filter(detector="source_secret_expiring").values_list("subject_type", "subject_id"))
    entra = "a0000000-0000-0000-0000-00000000000"
    assert subjects == {cred(f"{entra}1#passwordCredentials:k-1"), cred(f"{entra}3#passwordCredentials:k-3")}


def test_legacy_kubernetes_tokens(security):
    imported(security, "kubernetes-service-accounts")
    assert found("source_legacy_token") == {cred("secret:ml/inference-token"), cred("secret:ml/trainer-token")}


def test_unknown_last_use_is_never_unused(security):
    """Anthropic keys have no last use: stale never reports them; credential_use_unknown does. OpenAI keys have one."""
    imported(security, "anthropic-api-keys", "openai-admin-keys")
    with time_machine.travel(datetime(2025, 9, 1, tzinfo=UTC), tick=False):
        scan = scan_run(scan_create(detectors=["credential_stale", "credential_use_unknown"]).pk)
    assert "error" not in str(scan.counts)
    stale = set(Finding.objects.filter(detector="credential_stale").values_list("subject_type", "subject_id"))
    unknown = set(Finding.objects.filter(detector="credential_use_unknown").values_list("subject_type", "subject_id"))
    anthropic = cred("apikey_01Rj2N8SVvo6BePZj99NhmiT#key")
    assert anthropic not in stale and anthropic in unknown
    # The OpenAI key never used (last_used_at null, the source reports use) is unused.
    assert cred("key_def#key") in stale and cred("key_def#key") not in unknown


def test_unregistered_ai_tool(security):
    imported(security, "github-app-installations")
    assert found("ai_tool_unregistered") == {
        ident("app-installation:11"), ident("app-installation:12"),
    }  # fmt: skip


def test_human_use_signal_from_the_aws_report(security):
    imported(security, "aws-credential-report")
    assert ident("arn:aws:iam::123456789012:user/alice") in found("identity_human_use")
