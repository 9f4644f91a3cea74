"""Property (issue 12): API token authentication (the lookup statement in `nhi_portal.authentication` and the check
around it) answers as its plain-Python reference (`nhi_portal.authentication_reference`) over generated tokens and
presented strings, for every outcome: valid, malformed (NUL, non-ASCII), unknown key, wrong digest, expired and
inactive user. The user and token it answers with are field for field what the ORM reads, roles included.

Time stands still, so a token expiring at the very moment of the check is generated too.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import transaction
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed

from nhi_portal import roles
from nhi_portal.authentication import TokenAuthentication
from nhi_portal.authentication_reference import (
    INACTIVE_USER,
    OUTCOMES,
    VALID,
    World,
    authenticate_reference,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EXPIRIES = {"never": None, "past": timedelta(hours=-1), "now": timedelta(0), "later": timedelta(hours=1)}
GROUPS = (*roles.ALL_ROLES, "auditors")
PRESENTED = ("issued", "tampered", "key_only", "unknown", "nul", "non_ascii", "control")

worlds = st.fixed_dictionaries(
    {
        "roles": st.fixed_dictionaries({name: st.sets(st.sampled_from(GROUPS)) for name in ("u-on", "u-off")}),
        "tokens": st.lists(
            st.tuples(st.sampled_from(["u-on", "u-on", "u-off"]), st.sampled_from(list(EXPIRIES))),
            min_size=1,
            max_size=3,
        ),
        "presented": st.tuples(st.sampled_from(PRESENTED), st.integers(0, 2)),
    }
)
EXAMPLES = [
    {"roles": {"u-on": {"security", "auditors"}, "u-off": set()}, "tokens": [("u-on", expires)], "presented": shown}
    for expires, shown in [
        ("later", ("issued", 0)),
        ("never", ("nul", 0)),
        ("never", ("non_ascii", 0)),
        ("never", ("unknown", 0)),
        ("never", ("tampered", 0)),
        ("now", ("issued", 0)),
    ]
] + [{"roles": {"u-on": set(), "u-off": {"gateway"}}, "tokens": [("u-off", "never")], "presented": ("issued", 0)}]


@pytest.fixture
def users(db):
    return {"u-on": UserFactory(username="u-on"), "u-off": UserFactory(username="u-off", is_active=False)}


def _presented(kind: str, token: str) -> bytes:
    """What comes after "Token " in the header: the issued token, or one that is not quite it."""
    return {
        "issued": token,
        "tampered": token[:-1] + ("0" if token[-1] != "0" else "1"),  # the same key, another digest
        "key_only": token[:15],
        "unknown": "f" * len(token),
        "nul": token[:20] + "\x00" + token[21:],
        "non_ascii": token[:20] + "\u00e9" + token[21:],
        "control": token[:20] + "\x1b" + token[21:],
    }[kind].encode()


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def _compare(users: dict, world: dict) -> str:
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        for name, groups in world["roles"].items():
            users[name].groups.set([Group.objects.get_or_create(name=group)[0] for group in groups])
        issued = []
        for name, expires in world["tokens"]:
            issued.append(AuthToken.objects.create(user=users[name], expiry=EXPIRIES[expires])[1])
        kind, index = world["presented"]
        presented = _presented(kind, issued[index % len(issued)])
        expected = authenticate_reference(World.from_database(NOW), presented)
        try:
            user, token = TokenAuthentication().authenticate_credentials(presented)
        except AuthenticationFailed as refused:
            answer = ("refused", str(refused.detail))
        else:
            answer = ("user", user.pk, roles.roles_of(user))
            # Decoded from the statement's row exactly as the ORM reads it (SQLite's datetimes among them).
            assert _fields(user) == _fields(type(user).objects.get(pk=user.pk))
            assert _fields(token) == _fields(AuthToken.objects.get(pk=token.pk))
        if expected.outcome == VALID:
            assert answer == ("user", expected.user, expected.roles)
        elif expected.outcome == INACTIVE_USER:
            assert answer == ("refused", "User inactive or deleted.")
        else:
            assert answer == ("refused", "Invalid token."), expected
        transaction.set_rollback(True)
    return expected.outcome


@pytest.mark.parametrize("world", EXAMPLES, ids=lambda world: "-".join(map(str, world["presented"])))
def test_each_example_answers_as_the_reference(users, world):
    _compare(users, world)


def test_the_examples_reach_every_outcome(users):
    assert {_compare(users, world) for world in EXAMPLES} == set(OUTCOMES)


def test_token_authentication_agrees_with_its_reference(users):
    reached = Counter()

    @settings(max_examples=100, deadline=None)
    @given(world=worlds)
    def agrees_with_its_reference(world):
        outcome = _compare(users, world)
        event(outcome)
        reached[outcome] += 1

    for world in EXAMPLES:
        agrees_with_its_reference = example(world=world)(agrees_with_its_reference)
    agrees_with_its_reference()
    assert set(reached) == set(OUTCOMES)
