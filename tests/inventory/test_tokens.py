"""API tokens: hashed at rest, expiring, issued by a command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIClient

from approvals.tasks import delete_expired_tokens
from nhi_portal.authentication import TokenAuthentication
from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db

KEY = CONSTANTS.TOKEN_KEY_LENGTH


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


@pytest.mark.parametrize(
    "header",
    [
        "Token not-a-real-token",
        "Token " + "0" * 64,
        "Token \u00e9\u00e9",
        "Token",
        "Token a b",
        "Token " + "f" * 9000,
        "Token \x00" + "a" * 63,
        "Token " + "a" * 14 + "\x00",
    ],
)
def test_bad_token_is_refused(owner, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/tools/")
    assert response.status_code == 401
    assert response.json() == {"detail": response.json()["detail"]}


def test_token_of_inactive_user_is_refused(owner):
    token = _issue("owner", "--days", "1")
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 401


def test_one_query_authenticates_and_reads_the_roles(security, django_assert_num_queries):
    token = _issue(security.username, "--days", "1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.get("/api/v1/me/")  # a first use is also recorded, after the answer (operations/token_use.py)
    with django_assert_num_queries(1):
        response = client.get("/api/v1/me/")
    assert response.json()["roles"] == ["security"]


def test_expired_tokens_are_deleted_by_the_daily_job_not_on_requests(owner):
    live, expired = _issue("owner", "--days", "1"), _issue("owner", "--days", "1")
    AuthToken.objects.filter(token_key=expired[:KEY]).update(expiry=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {live}")
    assert client.get("/api/v1/tools/").status_code == 200
    assert AuthToken.objects.filter(user=owner).count() == 2
    assert delete_expired_tokens() == 1
    assert list(AuthToken.objects.filter(user=owner).values_list("token_key", flat=True)) == [live[:KEY]]


@pytest.mark.parametrize("args", [["nobody"], ["owner", "--days", "0"], ["owner", "--days", "9999"]])
def test_issue_token_rejects_bad_input(owner, args):
    with pytest.raises(CommandError):
        _issue(*args)


def test_authenticated_token_and_user_are_complete_model_instances(owner):
    """Read with hand-written SQL, they must still look exactly as the ORM would build them."""
    owner.last_login = timezone.now()
    owner.save(update_fields=["last_login"])
    token = _issue("owner", "--days", "1")
    user, auth_token = TokenAuthentication().authenticate_credentials(token.encode())
    assert user == owner and not user._state.adding
    assert user.last_login == owner.last_login and timezone.is_aware(user.last_login)
    assert timezone.is_aware(auth_token.expiry) and auth_token.user_id == owner.pk
    stored = AuthToken.objects.get(pk=auth_token.pk)
    assert (auth_token.digest, auth_token.expiry, auth_token.created) == (stored.digest, stored.expiry, stored.created)
    assert user.is_active is True and user.is_superuser is False
