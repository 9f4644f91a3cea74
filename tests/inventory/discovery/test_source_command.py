"""`manage.py import_source`: same rules and counts as the API, errors with line or path and field, exit status."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.models import Credential, ServiceIdentity, SourceObject, SourceRun
from tests.inventory.discovery.helpers import FIXTURES, state

pytestmark = pytest.mark.django_db


def run(*args, **options):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("import_source", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_import_then_reimport_then_full(security):
    path = str(FIXTURES / "aws-credential-report.csv")
    out, _ = run("aws-credential-report", path, "--actor", security.username, "--account", "123456789012")
    assert "created: 4 identities, 6 credentials" in out
    before = state()
    out, _ = run("aws-credential-report", path, "--actor", security.username, "--account", "123456789012")
    assert "Nothing changed" in out and "unchanged: 4 identities, 6 credentials" in out
    assert state() == before
    out, _ = run(
        "aws-credential-report", str(FIXTURES / "aws-credential-report-2.csv"), "--full", "--actor",
        security.username, "--account", "123456789012",
    )  # fmt: skip
    assert "gone: 1 identities, 2 credentials" in out
    assert SourceObject.objects.filter(gone_at__isnull=False).count() == 3
    assert SourceRun.objects.count() == 2


def test_dry_run_changes_nothing(security):
    out, _ = run("okta-apps", str(FIXTURES / "okta-apps.json"), "--dry-run", "--actor", security.username)
    assert "Dry run (nothing changed)" in out and "created: 3 identities" in out
    assert not ServiceIdentity.objects.exists() and not SourceRun.objects.exists()


def test_errors_name_line_and_field_and_change_nothing(security):
    with pytest.raises(CommandError, match="nothing was changed"):
        run("aws-credential-report", str(FIXTURES / "aws-credential-report-bad.csv"), "--actor", security.username)
    assert not ServiceIdentity.objects.exists() and not Credential.objects.exists()


def test_error_output(security, capsys):
    from io import StringIO

    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_source", "gcp-service-account-keys", str(FIXTURES / "gcp-service-account-keys-bad.json"),
            "--actor", security.username, stderr=err,
        )  # fmt: skip
    assert "[1] validAfterTime: Must be an ISO 8601" in err.getvalue()
    assert "[2]: Each entry must be a JSON object." in err.getvalue()


@pytest.mark.parametrize("who", ["owner", "mgr"])
def test_only_security_may_import(who, owner, manager):
    with pytest.raises(CommandError, match="Only security"):
        run("okta-apps", str(FIXTURES / "okta-apps.json"), "--actor", who)
    assert not ServiceIdentity.objects.exists()


def test_unreadable_file_and_unknown_kind(security):
    with pytest.raises(CommandError, match="Cannot read"):
        run("okta-apps", "/nonexistent/file.json", "--actor", security.username)
    with pytest.raises(CommandError):
        run("myspace", str(FIXTURES / "okta-apps.json"), "--actor", security.username)
