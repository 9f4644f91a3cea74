"""Sign-in lockout (django-axes): after LOGIN_FAILURE_LIMIT failures a username is locked out from that address only,
with a clear 429 page, until LOGIN_LOCKOUT_MINUTES have passed."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # the factory's
ATTACKER = "203.0.113.66"
ELSEWHERE = "198.51.100.7"


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def sign_in(client, username, password, address=ATTACKER):
    client.logout()
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(response) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def fail(client, times, username="alice", address=ATTACKER):
    return [sign_in(client, username, "wrong-password", address).status_code for _ in range(times)]


def test_fifth_failure_locks_that_username_out_with_a_clear_page(client, alice):
    assert fail(client, 4) == [200] * 4  # the form again, with its error
    locked = sign_in(client, "alice", "wrong-password")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Sign-in paused" in page and "15 minutes" in page
    assert "Content-Security-Policy" in locked.headers
    # Locked means locked: the right password does not get in either.
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_lockout_is_by_username_and_address_together(client, alice):
    UserFactory(username="bob")
    fail(client, 5)
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    # The same user from elsewhere, and another user from the same address, still sign in.
    assert signed_in(sign_in(client, "alice", PASSWORD, address=ELSEWHERE))
    assert signed_in(sign_in(client, "bob", PASSWORD, address=ATTACKER))


def test_lockout_ends_after_the_cool_off(client, alice):
    fail(client, 5)
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert signed_in(sign_in(client, "alice", PASSWORD))


def test_a_successful_sign_in_clears_the_count(client, alice):
    fail(client, 4)
    assert signed_in(sign_in(client, "alice", PASSWORD))
    assert fail(client, 4) == [200] * 4


def test_a_forged_forwarded_for_does_not_give_each_guess_a_fresh_address(client, alice):
    for n in range(5):
        client.post(
            reverse("login"),
            {"username": "alice", "password": "wrong-password"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_the_lockout_page_does_not_repeat_the_username(client):
    pasted = "sk-live-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    responses = [sign_in(client, pasted, "x") for _ in range(5)]
    assert responses[-1].status_code == 429
    assert pasted not in responses[-1].content.decode()
