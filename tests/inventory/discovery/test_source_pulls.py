"""Live pulls (issue 14): AWS IAM's credential report through boto3 against moto in server mode (a real HTTP
endpoint), and GitHub's org lists against a local HTTP server replaying recorded GitHub responses, pages and Link
headers included. No network. A pull goes through the file import's sync: same run, audit, provenance, gone at the
source, idempotence and targeted detection; a failed pull changes nothing, and no credential is stored or logged."""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.exceptions import ImproperlyConfigured

from inventory import tasks
from inventory.imports.sources.pulls import pull_configs, source_pull
from inventory.models import AuditEntry, Credential, DetectionChange, ServiceIdentity, SourceObject, SourceRun
from nhi_portal.celery import app
from tests.services import moto_server

from .helpers import FIXTURES, state

pytestmark = pytest.mark.django_db
TOKEN = "github_pat_11AAAA-recorded-replay-SECRET-token-0042"
ACCOUNT = "123456789012"  # moto's default account


# AWS through moto's server


@pytest.fixture
def iam():
    import boto3

    with moto_server() as endpoint:
        yield boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")  # fmt: skip


@pytest.fixture
def aws_pull(iam, settings, security, monkeypatch):
    # The standard chain's environment step, with a secret this test can look for; IMDS off, so a missing credential
    # fails at once rather than after the metadata service's timeout.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-never-stored")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings.SOURCE_PULL_ACTOR = security.username
    settings.SOURCE_PULLS = {"aws-main": {"kind": "aws-credential-report", "account": ACCOUNT,
                                          "endpoint_url": iam.meta.endpoint_url}}  # fmt: skip
    return iam


def _estate(iam) -> dict[str, str]:
    """Three IAM users: one key; two active keys; a console password beside a key. Returns user -> ARN."""
    arns = {}
    for name in ("deploy-bot", "ci-deployer", "alice-console"):
        arns[name] = iam.create_user(UserName=name)["User"]["Arn"]
        iam.create_access_key(UserName=name)
    iam.create_access_key(UserName="ci-deployer")
    iam.create_login_profile(UserName="alice-console", Password="Pa55word-for-moto!")
    return arns


def test_the_aws_pull_imports_the_credential_report_like_a_file(aws_pull, security, caplog):
    arns = _estate(aws_pull)
    caplog.set_level(logging.DEBUG)
    outcome = source_pull(name="aws-main")
    assert outcome.outcome == "pulled", outcome.detail
    assert outcome.result["created"] == {"identities": 3, "credentials": 4}
    identities = {i.external_id: i for i in ServiceIdentity.objects.filter(provider="aws")}
    assert set(identities) == set(arns.values())
    assert identities[arns["alice-console"]].interactive_use_seen  # a console password beside a live key
    assert Credential.objects.filter(identity=identities[arns["ci-deployer"]], revoked_at=None).count() == 2
    run = SourceRun.objects.get()
    assert (run.kind, run.account, run.full, run.actor) == ("aws-credential-report", ACCOUNT, True, security)
    assert len(run.file_digest) == 64
    summary = AuditEntry.objects.get(action="source.imported")
    assert summary.after["origin"] == "pull:aws-main" and summary.actor == security
    assert AuditEntry.objects.filter(action="identity.discovered").count() == 3
    # Provenance: which source and account, first and last seen there.
    source = SourceObject.objects.get(external_id=arns["deploy-bot"])
    assert (source.kind, source.account, source.first_run_id) == ("aws-credential-report", ACCOUNT, run.pk)
    # Nothing of the AWS credentials the pull used is kept or logged.
    stored = json.dumps([list(AuditEntry.objects.values("before", "after")), list(SourceObject.objects.values(
        "attributes"))], default=str)  # fmt: skip
    assert "testing-secret-never-stored" not in stored and "testing-secret-never-stored" not in caplog.text


def test_an_unchanged_aws_pull_writes_nothing_and_a_later_one_marks_what_is_gone(aws_pull):
    arns = _estate(aws_pull)
    assert source_pull(name="aws-main").outcome == "pulled"
    before = state()
    again = source_pull(name="aws-main")
    assert again.result["run"] is None and again.result["unchanged"] == {"identities": 3, "credentials": 4}
    after = state()
    assert after.pop("audit") == before.pop("audit") + 1 and after == before  # only "read, nothing changed"
    # The user deleted at AWS (its key first, as IAM requires) is gone at the source: its key revoked, with why.
    key = aws_pull.list_access_keys(UserName="deploy-bot")["AccessKeyMetadata"][0]["AccessKeyId"]
    aws_pull.delete_access_key(UserName="deploy-bot", AccessKeyId=key)
    aws_pull.delete_user(UserName="deploy-bot")
    later = source_pull(name="aws-main")
    assert later.result["gone"] == {"identities": 1, "credentials": 1}
    identity = ServiceIdentity.objects.get(external_id=arns["deploy-bot"])
    assert identity.status == "disabled"
    credential = identity.credentials.get()
    assert credential.revoked_at is not None
    assert "No longer listed by aws-credential-report" in SourceObject.objects.get(credential=credential).gone_reason
    assert AuditEntry.objects.filter(action="credential.revoked_at_source", object_id=str(credential.pk)).exists()


def test_a_dry_run_pull_reports_and_changes_nothing(aws_pull):
    _estate(aws_pull)
    before = state()
    outcome = source_pull(name="aws-main", dry_run=True)
    assert outcome.result["dry_run"] and outcome.result["created"] == {"identities": 3, "credentials": 4}
    assert state() == before


def test_the_pull_queues_targeted_detection_as_a_file_import_does(aws_pull, django_capture_on_commit_callbacks):
    arns = _estate(aws_pull)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        source_pull(name="aws-main")
    assert callbacks  # the changes are recorded once the import commits
    for callback in callbacks:
        if getattr(callback, "func", None).__name__ == "changes_after_source_run":
            callback()
    changed = set(DetectionChange.objects.filter(key_type="identity").values_list("key_id", flat=True))
    assert changed == set(ServiceIdentity.objects.filter(external_id__in=arns.values()).values_list("pk", flat=True))


def test_without_aws_credentials_the_pull_fails_and_changes_nothing(aws_pull, monkeypatch):
    _estate(aws_pull)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    before = state()
    outcome = source_pull(name="aws-main")
    assert outcome.outcome == "failed" and "No AWS credentials" in outcome.detail
    after = state()
    assert after.pop("audit") == before.pop("audit") + 1 and after == before
    failed = AuditEntry.objects.get(action="source.pull_failed")
    assert failed.object_id == "aws-main" and failed.after["kind"] == "aws-credential-report"


@pytest.mark.redis
@pytest.mark.postgres  # a worker thread and the test share the database
@pytest.mark.django_db(transaction=True)
def test_beat_pulls_on_a_real_worker_and_detection_finds_the_two_active_keys(iam, settings, monkeypatch):
    from tests.factories import UserFactory

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.SOURCE_PULL_ACTOR = UserFactory(username="pull-sec", roles=["security"]).username
    settings.SOURCE_PULLS = {"aws-main": {"kind": "aws-credential-report", "account": ACCOUNT,
                                          "endpoint_url": iam.meta.endpoint_url}}  # fmt: skip
    settings.DETECTION_DEBOUNCE_SECONDS = 0
    arns = _estate(iam)
    from inventory.models import Finding

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.pull_discovery_sources.delay()  # as beat sends it; results are not kept (CELERY_TASK_IGNORE_RESULT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not Finding.objects.filter(detector="source_two_active_keys").exists():
            time.sleep(0.3)
    finding = Finding.objects.get(detector="source_two_active_keys")
    assert finding.subject_id == ServiceIdentity.objects.get(external_id=arns["ci-deployer"]).pk
    assert SourceRun.objects.get().actor_label == "pull-sec"


def test_beat_does_nothing_when_no_pull_is_configured(settings, security):
    settings.SOURCE_PULLS = {}
    before = state()
    assert tasks.pull_discovery_sources() == []
    assert state() == before
    assert app.conf.beat_schedule["pull-discovery-sources"]["task"] == "inventory.tasks.pull_discovery_sources"


# GitHub through a local server replaying recorded responses


class _Replay(ThreadingHTTPServer):
    def __init__(self, recording: str):
        super().__init__(("127.0.0.1", 0), _ReplayHandler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.requests: list[tuple[str, str]] = []
        self.load(recording)

    def load(self, recording: str) -> None:
        exchanges = json.loads((FIXTURES / "github-api" / recording).read_text())["exchanges"]
        self.exchanges = {(e["method"], e["path"]): e for e in exchanges}


class _ReplayHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Authorization", "")))
        exchange = self.server.exchanges.get(("GET", self.path))
        if exchange is None:  # GitHub's own 404 body
            body = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
            exchange = {"status": 404, "headers": {"Content-Type": "application/json"}, "body": body}
        body = json.dumps(exchange["body"]).encode()
        self.send_response(exchange["status"])
        for name, value in exchange["headers"].items():
            self.send_header(name, value.replace("{base}", self.server.base))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet test output
        pass


@pytest.fixture
def github(settings, security, monkeypatch):
    servers = []

    def start(recording: str, kind: str = "github-fine-grained-pats") -> _Replay:
        server = _Replay(recording)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("NHI_TEST_GITHUB_TOKEN", TOKEN)
        settings.SOURCE_PULL_ACTOR = security.username
        settings.SOURCE_PULLS = {"gh-acme": {"kind": kind, "org": "acme", "token_env": "NHI_TEST_GITHUB_TOKEN",
                                             "api_url": server.base}}  # fmt: skip
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_github_pull_follows_every_page_with_the_token_and_imports(github, security, owner, caplog):
    server = github("org-personal-access-tokens.json")
    caplog.set_level(logging.DEBUG)
    outcome = tasks.pull_discovery_source("gh-acme")
    assert outcome["outcome"] == "pulled", outcome
    assert [path for path, _ in server.requests] == [
        "/orgs/acme/personal-access-tokens?per_page=100",
        "/organizations/1/personal-access-tokens?per_page=100&page=2",
    ]
    assert all(auth == f"Bearer {TOKEN}" for _, auth in server.requests)
    assert outcome["created"] == {"identities": 3, "credentials": 3}
    pats = {i.external_id: i for i in ServiceIdentity.objects.filter(provider="github")}
    assert set(pats) == {"pat:501", "pat:502", "pat:503"}
    assert pats["pat:501"].owner == owner  # owner.login matched to a portal user
    assert pats["pat:502"].owner.username == "unassigned"  # alice-gh is nobody here: the Unassigned queue
    run = SourceRun.objects.get()
    assert (run.account, run.actor) == ("acme", security)  # the org is the account, as containment reads it
    # The token is nowhere: not in the database, not in the logs.
    everything = json.dumps([state(), list(AuditEntry.objects.values()), list(SourceRun.objects.values())],
                            default=str)  # fmt: skip
    assert TOKEN not in everything and TOKEN not in caplog.text


def test_an_unchanged_github_pull_writes_nothing_and_a_later_one_marks_the_gone_token(github):
    server = github("org-personal-access-tokens.json")
    source_pull(name="gh-acme")
    before = state()
    assert source_pull(name="gh-acme").result["run"] is None
    after = state()
    # Nothing written but the record that the source was read (the Sources page's last sync).
    assert after.pop("audit") == before.pop("audit") + 1 and after == before
    checked = AuditEntry.objects.get(action="source.pull_unchanged")
    assert checked.after == {"kind": "github-fine-grained-pats", "account": "acme"}
    server.load("org-personal-access-tokens-2.json")
    later = source_pull(name="gh-acme")
    assert later.result["gone"] == {"identities": 1, "credentials": 1}
    assert later.result["updated"]["credentials"] == 1  # 501 got an expiry
    gone = Credential.objects.get(identity__external_id="pat:503")
    assert gone.revoked_at is not None


def test_the_github_app_installations_pull_joins_pages_under_the_envelope(github):
    github("org-installations.json", kind="github-app-installations")
    outcome = source_pull(name="gh-acme")
    assert outcome.outcome == "pulled", outcome.detail
    assert outcome.result["created"]["identities"] == 3
    assert set(ServiceIdentity.objects.filter(provider="github").values_list("external_id", flat=True)) == {
        "app-installation:11", "app-installation:12", "app-installation:13"}  # fmt: skip


def test_an_installations_pull_shorter_than_its_total_changes_nothing(github):
    """Found by review: a page lost (its Link missing) made a full pull mark the rest gone, for good."""
    server = github("org-installations.json", kind="github-app-installations")
    assert source_pull(name="gh-acme").outcome == "pulled"
    before = state()
    first = next(e for (method, path), e in server.exchanges.items() if path.startswith("/orgs/acme/installations"))
    first["headers"].pop("Link", None)
    outcome = source_pull(name="gh-acme")
    assert outcome.outcome == "failed" and "said 3 entries" in outcome.detail, outcome.detail
    after = state()
    assert after.pop("audit") == before.pop("audit") + 1 and after == before


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ("unauthorized", "HTTP 401"),
        ("rate_limited", "HTTP 403 (rate limit)"),
        ("foreign_next", "another host"),
        ("not_a_list", "not the documented list"),
        ("bad_entry", "rejected: 1 error(s), first at [1]"),
        ("empty", "listed nothing"),  # found by review: it marked every token gone
    ],
)
def test_a_failed_github_pull_changes_nothing_and_keeps_the_token_out(github, caplog, change, detail):
    server = github("org-personal-access-tokens.json")
    first = server.exchanges[("GET", "/orgs/acme/personal-access-tokens?per_page=100")]
    if change == "unauthorized":
        first.update(status=401, body={"message": "Bad credentials", "documentation_url": "https://docs.github.com"})
    elif change == "rate_limited":
        first.update(status=403, body={"message": "API rate limit exceeded"})
        first["headers"]["X-RateLimit-Remaining"] = "0"
    elif change == "foreign_next":
        first["headers"]["Link"] = '<http://elsewhere.invalid/orgs/acme/personal-access-tokens?page=2>; rel="next"'
    elif change == "not_a_list":
        first["body"] = {"message": "surprise"}
    elif change == "empty":
        first["body"] = []
        first["headers"].pop("Link", None)
    else:
        first["body"][1]["token_expires_at"] = "not a date"
    caplog.set_level(logging.DEBUG)
    before = state()
    outcome = source_pull(name="gh-acme")
    assert outcome.outcome == "failed" and detail in outcome.detail, outcome.detail
    after = state()
    assert after.pop("audit") == before.pop("audit") + 1 and after == before
    entry = AuditEntry.objects.get(action="source.pull_failed")
    assert TOKEN not in json.dumps(entry.after) and TOKEN not in caplog.text
    if change == "foreign_next":
        assert len(server.requests) == 1  # the token never went to the other host


def test_a_github_pull_without_its_token_or_actor_fails(github, settings, monkeypatch):
    server = github("org-personal-access-tokens.json")
    monkeypatch.delenv("NHI_TEST_GITHUB_TOKEN")
    assert "holds no GitHub token" in source_pull(name="gh-acme").detail
    monkeypatch.setenv("NHI_TEST_GITHUB_TOKEN", TOKEN)
    settings.SOURCE_PULL_ACTOR = "owner-nobody"
    assert "not an active security user" in source_pull(name="gh-acme").detail
    settings.SOURCE_PULL_ACTOR = ""
    assert "SOURCE_PULL_ACTOR is not set" in source_pull(name="gh-acme").detail
    assert server.requests == [] and not SourceRun.objects.exists()


def test_an_owner_cannot_be_the_pull_actor(github, settings, owner):
    server = github("org-personal-access-tokens.json")
    settings.SOURCE_PULL_ACTOR = owner.username
    assert source_pull(name="gh-acme").outcome == "failed"
    assert server.requests == [] and not ServiceIdentity.objects.exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "aws-credential-report", "aws_secret_access_key": "x"}, "would put a credential"),
        ({"kind": "github-fine-grained-pats", "org": "acme", "token": "x", "token_env": "T"}, "would put a credential"),
        ({"kind": "github-fine-grained-pats", "org": "acme"}, "needs org and token_env"),
        ({"kind": "okta-apps"}, "kind must be one of"),
        ({"kind": "aws-credential-report", "regoin": "eu-west-1"}, "unknown option"),
        ({"kind": "aws-credential-report", "full": "yes"}, "full is true or false"),
    ],
)
def test_a_misconfigured_pull_is_refused_at_configuration(settings, entry, message):
    settings.SOURCE_PULLS = {"bad": entry}
    with pytest.raises(ImproperlyConfigured, match=message):
        pull_configs()


def test_the_command_runs_a_pull_and_says_what_changed(github):
    from io import StringIO

    from django.core.management import CommandError, call_command

    github("org-personal-access-tokens.json")
    out = StringIO()
    call_command("pull_source", "--dry-run", stdout=out)
    assert "gh-acme: dry run: created 6, updated 0, unchanged 0, gone 0" in out.getvalue()
    assert not ServiceIdentity.objects.exists()
    call_command("pull_source", "gh-acme", stdout=out)
    assert SourceRun.objects.count() == 1
    with pytest.raises(CommandError, match="Not in SOURCE_PULLS: other"):
        call_command("pull_source", "other")


def test_the_sources_page_counts_an_unchanged_pull_as_a_sync(github, page_as):
    """A pull that changed nothing writes no run; the page must still show the source as read just now, not as stale
    as its last change."""
    from datetime import timedelta

    from django.utils import timezone

    github("org-personal-access-tokens.json")
    source_pull(name="gh-acme")
    SourceRun.objects.update(finished_at=timezone.now() - timedelta(days=9))  # the last change, long ago
    assert "acme: 9 d ago" in " ".join(page_as("security").get("/sources/").content.decode().split())
    source_pull(name="gh-acme")  # unchanged
    page = " ".join(page_as("security").get("/sources/").content.decode().split())
    assert "acme: 9 d ago" not in page and "acme: today" in page
