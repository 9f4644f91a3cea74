"""API tokens: hashed at rest, expiring, issued by a command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db


def _issue(username: str, *args) -> str:
    out = StringIO()
    call_command("issue_token", username, *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_issued_token_authenticates_and_is_stored_hashed(owner):
    token = _issue("owner", "--days", "7")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/tools/").status_code == 200
    assert rows_containing(token) == []
    stored = AuthToken.objects.get(user=owner)
    assert timedelta(days=6) < stored.expiry - timezone.now() <= timedelta(days=7)


def test_expired_token_is_refused(owner):
    token = _issue("owner", "--days", "1")
    AuthToken.objects.filter(user=owner).update(expiry=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/tools/").status_code == 401


def test_bad_token_is_refused(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/tools/").status_code == 401


@pytest.mark.parametrize("args", [["nobody"], ["owner", "--days", "0"], ["owner", "--days", "9999"]])
def test_issue_token_rejects_bad_input(owner, args):
    with pytest.raises(CommandError):
        _issue(*args)
