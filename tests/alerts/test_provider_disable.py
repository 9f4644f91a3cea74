"""Containment at the provider (issue 18): an AWS access key is set Inactive in IAM (moto in server mode, spoken to
over HTTP by boto3) and a GitHub fine-grained token revoked (a local HTTP server) when configured; a dry run leaves
both alone; every outcome is audited."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from inventory.detection.provider_disable import provider_disable
from inventory.models import AuditEntry, Finding, SourceObject
from tests.factories import CredentialFactory, IdentityFactory
from tests.services import moto_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def iam(settings, monkeypatch):
    import boto3

    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        settings.CONTAINMENT_AWS_ENDPOINT_URL = endpoint
        yield boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")


def _aws_key(iam, owner):
    iam.create_user(UserName="deploy-bot")
    created = iam.create_access_key(UserName="deploy-bot")["AccessKey"]
    arn = iam.get_user(UserName="deploy-bot")["User"]["Arn"]
    identity = IdentityFactory(owner=owner, provider="aws", external_id=arn)
    credential = CredentialFactory(identity=identity, created_at=created["CreateDate"])
    now = timezone.now()
    SourceObject.objects.create(
        provider="aws", object_type="credential", external_id=f"{arn}#access_key_1@{created['CreateDate'].isoformat()}",
        kind="aws-credential-report", identity=identity, credential=credential, digest="x", first_seen_at=now,
        last_seen_at=now, attributes={"slot": "access_key_1"},
    )  # fmt: skip
    return credential, created["AccessKeyId"]


def _status(iam, key_id):
    return next(k["Status"] for k in iam.list_access_keys(UserName="deploy-bot")["AccessKeyMetadata"]
                if k["AccessKeyId"] == key_id)  # fmt: skip


def test_the_aws_key_is_disabled_when_configured(iam, owner, settings):
    credential, key_id = _aws_key(iam, owner)
    settings.CONTAINMENT_PROVIDER_DISABLE = True
    (outcome,) = provider_disable(credential_ids=[credential.pk], actor_label="sec")
    assert outcome.outcome == "disabled" and outcome.provider == "aws", outcome
    assert _status(iam, key_id) == "Inactive"
    entry = AuditEntry.objects.get(action="credential.provider_disable", object_id=str(credential.pk))
    assert entry.after["outcome"] == "disabled" and key_id not in json.dumps(entry.after)


def test_a_dry_run_leaves_the_aws_key_alone(iam, owner, settings):
    credential, key_id = _aws_key(iam, owner)
    settings.CONTAINMENT_PROVIDER_DISABLE = False
    (outcome,) = provider_disable(credential_ids=[credential.pk], actor_label="sec")
    assert outcome.outcome == "dry_run" and "deploy-bot" in outcome.action
    assert _status(iam, key_id) == "Active"
    assert AuditEntry.objects.get(action="credential.provider_disable").after["outcome"] == "dry_run"


def test_containing_through_the_api_queues_the_disable(iam, owner, settings, api_as, celery_eager,
                                                       django_capture_on_commit_callbacks):  # fmt: skip
    credential, key_id = _aws_key(iam, owner)
    settings.CONTAINMENT_PROVIDER_DISABLE = True
    now = timezone.now()
    finding = Finding.objects.create(detector="source_key_exposed", subject_type="credential", subject_id=credential.pk,
                                     identity=credential.identity, severity="critical", first_seen_at=now,
                                     recorded_last_seen_at=now, opened_at=now)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as("security").post(f"/api/v1/findings/{finding.pk}/contain/", {"reason": "Exposed."}, "json")
    assert response.status_code == 200
    assert any("disable at aws queued" in action for action in response.json()["actions"])
    assert _status(iam, key_id) == "Inactive"


class _GitHub:
    def __init__(self):
        self.calls = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append((self.path, self.headers.get("Authorization"), json.loads(body)))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def github(settings):
    server = _GitHub()
    settings.CONTAINMENT_GITHUB_API_URL = server.url
    settings.CONTAINMENT_GITHUB_TOKEN = "ghs-admin-token"
    yield server
    server.server.shutdown()
    server.server.server_close()


def _pat(owner):
    identity = IdentityFactory(owner=owner, provider="github", external_id="pat:4242")
    credential = CredentialFactory(identity=identity)
    now = timezone.now()
    SourceObject.objects.create(provider="github", object_type="credential", external_id="pat:4242#token",
                                kind="github-fine-grained-pats", account="acme", identity=identity,
                                credential=credential, digest="x", first_seen_at=now, last_seen_at=now)  # fmt: skip
    return credential


def test_a_github_token_is_revoked_when_configured(github, owner, settings):
    settings.CONTAINMENT_PROVIDER_DISABLE = True
    (outcome,) = provider_disable(credential_ids=[_pat(owner).pk], actor_label="sec")
    assert outcome.outcome == "disabled"
    assert github.calls == [("/orgs/acme/personal-access-tokens/4242", "Bearer ghs-admin-token", {"action": "revoke"})]


def test_a_github_dry_run_calls_nothing(github, owner, settings):
    settings.CONTAINMENT_PROVIDER_DISABLE = False
    (outcome,) = provider_disable(credential_ids=[_pat(owner).pk], actor_label="sec")
    assert outcome.outcome == "dry_run" and github.calls == []


def test_a_credential_without_a_known_provider_is_untouched(owner, settings):
    settings.CONTAINMENT_PROVIDER_DISABLE = True
    assert provider_disable(credential_ids=[CredentialFactory().pk], actor_label="sec") == []
