"""An API token's last use (operations/token_use.py): recorded once the answer is out, at most once per token and
process every RECORD_EVERY, never backwards, never for a token that is gone; shown by the API and the page."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.models import AuthToken
from rest_framework.test import APIClient

from operations import token_use, tokens
from operations.models import TokenUse
from tests.factories import UserFactory

from .outside import Outside

LIST = "/api/v1/tokens/"


@pytest.fixture(autouse=True)
def clean_slate():
    """What this process remembers having recorded is process-wide: each test starts without it."""
    token_use.forget()
    yield
    token_use.forget()


def _client(text: str) -> APIClient:
    return APIClient(headers={"Authorization": f"Token {text}"})


def _last_used(token):
    return TokenUse.objects.filter(token=token).values_list("last_used_at", flat=True).first()


@pytest.mark.django_db
def test_the_first_use_is_recorded_after_the_answer_then_not_again_within_the_interval(
    owner, django_assert_num_queries
):
    token, text = AuthToken.objects.create(user=owner)
    client = _client(text)
    before = timezone.now()
    with django_assert_num_queries(2) as queries:  # the token lookup; after the answer, the record
        assert client.get("/api/v1/me/").status_code == 200
    assert queries.captured_queries[-1]["sql"].startswith(f"INSERT INTO {TokenUse._meta.db_table}")
    first = _last_used(token)
    assert first is not None and before <= first <= timezone.now()
    for _ in range(3):  # this process recorded it less than RECORD_EVERY ago: the lookup alone
        with django_assert_num_queries(1):
            assert client.get("/api/v1/me/").status_code == 200
    assert _last_used(token) == first


@pytest.mark.django_db
def test_once_due_again_the_next_use_moves_it_forward(owner):
    token, text = AuthToken.objects.create(user=owner)
    client = _client(text)
    client.get("/api/v1/me/")
    first = _last_used(token)
    # As if RECORD_EVERY had passed on this process's clock since it recorded the token.
    token_use._recorded[token.digest] -= token_use.RECORD_EVERY.total_seconds()
    client.get("/api/v1/me/")
    assert _last_used(token) > first


@pytest.mark.django_db
def test_a_later_use_recorded_elsewhere_is_never_moved_back(owner):
    token, _text = AuthToken.objects.create(user=owner)
    later = timezone.now()
    token_use.record(token.digest, later)
    token_use.record(token.digest, later - timedelta(minutes=3))  # another process's older use, written after
    assert _last_used(token) == later
    token_use.record(token.digest, later + timedelta(seconds=1))
    assert _last_used(token) == later + timedelta(seconds=1)
    assert TokenUse.objects.count() == 1


@pytest.mark.django_db
def test_a_token_that_is_gone_gets_no_row_and_revoking_takes_its_row_away(owner, api_as):
    gone, _text = AuthToken.objects.create(user=owner)
    digest = gone.digest
    gone.delete()
    token_use.record(digest, timezone.now())
    assert not TokenUse.objects.exists()

    token, text = AuthToken.objects.create(user=owner)
    _client(text).get("/api/v1/me/")
    assert TokenUse.objects.filter(token=token).exists()
    assert api_as("owner").post(f"{LIST}{tokens.public_id(token)}/revoke/").status_code == 204
    assert not TokenUse.objects.exists()
    # The revoked token's next request is refused and records nothing, even though it is due again.
    token_use.forget()
    assert _client(text).get("/api/v1/me/").status_code == 401
    assert not TokenUse.objects.exists()


@pytest.mark.django_db
def test_sessions_bad_tokens_and_expired_ones_record_nothing(owner, client):
    client.force_login(owner)
    assert client.get("/api/v1/me/").status_code == 200
    assert _client("not-a-token").get("/api/v1/me/").status_code == 401
    _expired, text = AuthToken.objects.create(user=owner, expiry=timedelta(seconds=-1))
    assert _client(text).get("/api/v1/me/").status_code == 401
    assert not TokenUse.objects.exists()


@pytest.mark.django_db
def test_the_api_and_the_page_show_it(owner, page_as):
    token, text = AuthToken.objects.create(user=owner)
    client = _client(text)
    [row] = client.get(LIST).json()["results"]
    assert row["last_used"] is None  # this very request is recorded once its answer is out
    [row] = client.get(LIST).json()["results"]
    recorded = _last_used(token)
    assert parse_datetime(row["last_used"]) == recorded
    page = page_as("owner").get("/tokens/").content.decode()
    assert timezone.localtime(recorded).strftime("%Y-%m-%d %H:%M") in page


@pytest.mark.django_db
def test_the_list_with_last_uses_costs_the_same_at_5_and_50_tokens(api_as, security, django_assert_max_num_queries):
    def add(n):
        for _ in range(n):
            token, _text = AuthToken.objects.create(user=UserFactory(roles=["gateway"]))
            token_use.record(token.digest, timezone.now())

    client = api_as("security")
    add(5)
    with django_assert_max_num_queries(4) as few:
        assert all(row["last_used"] for row in client.get(LIST).json()["results"])
    add(45)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get(LIST).json()["results"]) == 50


def test_recorded_through_a_real_server(live_server, transactional_db):
    owner = UserFactory(username="owner-live")
    token, text = AuthToken.objects.create(user=owner)
    response = Outside(live_server).get("/api/v1/me/", headers={"Authorization": f"Token {text}"})
    assert response.status_code == 200 and response.json()["username"] == "owner-live"
    # The server records once the response is closed, which may be just after the client has it: wait, briefly.
    deadline = time.monotonic() + 5
    while _last_used(token) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _last_used(token) is not None


@pytest.mark.django_db
def test_a_token_scraping_metrics_or_readiness_is_recorded(security, settings):
    """Found by review: /metrics and /readyz authenticate tokens outside DRF; a monitoring token read "never used"."""
    token, text = AuthToken.objects.create(user=security)
    assert _client(text).get("/metrics").status_code == 200
    assert _last_used(token) is not None


@pytest.mark.django_db(transaction=True)
def test_a_record_racing_a_revoke_logs_no_digest(caplog):
    """Found by review: a revoke committing while the record's insert waits on it fails the foreign key, and the
    database's message names the key, which is the token's digest: the log must not carry it."""
    import threading

    from django.db import connections, transaction

    token, _text = AuthToken.objects.create(user=UserFactory(username="racer"))
    digest, deleted = token.digest, threading.Event()

    def revoke():
        try:
            with transaction.atomic():
                AuthToken.objects.filter(digest=digest).delete()
                deleted.set()
                time.sleep(1.0)  # the record's insert now waits on this row, then finds it gone
        finally:
            connections.close_all()

    thread = threading.Thread(target=revoke)
    thread.start()
    assert deleted.wait(5)
    token_use._due.digest = digest
    with caplog.at_level("WARNING"):
        token_use._record_due()
    thread.join()
    assert digest not in caplog.text and not TokenUse.objects.exists()
