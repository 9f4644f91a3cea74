"""The home pages' fast reads see exactly what `visible_to` lets each role see: the index-shaped forms of the owner's
scope (open_finding_ids, probed_findings, scoped_by_identity, counted_by_identity) against the permission rule."""

from datetime import timedelta

import pytest
from django.utils import timezone

from home import owner as owner_home
from inventory import selectors
from inventory.models import Credential, Finding, FindingStatus, ScopeGrant
from tests.factories import BindingFactory, CredentialFactory, GrantFactory, IdentityFactory, ToolFactory

from .conftest import finding

pytestmark = pytest.mark.django_db

ROLES = ["owner", "other_owner", "security", "manager", "gateway"]


@pytest.fixture
def tangle(users):
    """Every way a finding can reach an owner, and some that must not: a tool finding on their tool; findings on their
    own identity shown under someone else's tool; on someone else's identity behind their tool; on an identity that is
    no longer behind their tool but still names it (the tool kept from when it was); and findings that are neither."""
    mine, theirs = users["owner"], users["other_owner"]
    my_tool, their_tool = ToolFactory(owner=mine), ToolFactory(owner=theirs)
    my_identity = IdentityFactory(owner=mine)
    their_identity_behind_my_tool = IdentityFactory(owner=theirs)
    BindingFactory(tool=my_tool, identity=their_identity_behind_my_tool)
    their_identity = IdentityFactory(owner=theirs)
    BindingFactory(tool=their_tool, identity=their_identity)
    made = [
        finding(subject=my_tool, severity="high", tool=my_tool),
        finding(subject=my_identity, severity="critical", tool=their_tool, identity=my_identity),
        finding(subject=their_identity_behind_my_tool, severity="critical", tool=their_tool,
                identity=their_identity_behind_my_tool),
        finding(subject=their_identity, severity="critical", tool=my_tool, identity=their_identity),  # stale tool
        finding(subject=their_identity, severity="medium", tool=their_tool, identity=their_identity, days_open=5),
        finding(subject=their_tool, severity="high", tool=their_tool),
        finding(subject=my_tool, severity="critical", tool=my_tool, status="suppressed", days_open=9),
    ]  # fmt: skip
    now = timezone.now()
    for identity in (my_identity, their_identity_behind_my_tool, their_identity):
        CredentialFactory(identity=identity, expires_at=now + timedelta(days=2))
        CredentialFactory(identity=identity, revoked_at=now)
        GrantFactory(identity=identity, expires_at=now + timedelta(days=3))
    return made


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("severity", [None, "critical", "high"])
def test_open_finding_ids_are_exactly_the_visible_open_findings(tangle, users, role, severity):
    user = users[role]
    expected = Finding.objects.visible_to(user).filter(status=FindingStatus.OPEN)
    if severity:
        expected = expected.filter(severity=severity)
    got = list(selectors.open_finding_ids(user=user, severity=severity).values_list("pk", flat=True))
    assert len(got) == len(set(got))  # the owner's two parts are disjoint: nothing counted twice
    assert set(got) == set(expected.values_list("pk", flat=True))
    if role == "owner":
        assert len(got) == (4 if severity is None else 3 if severity == "critical" else 1)


@pytest.mark.parametrize("role", ROLES)
def test_probed_findings_are_exactly_the_visible_findings(tangle, users, role):
    user = users[role]
    probed = selectors.probed_findings(Finding.objects.all(), user=user)
    assert set(probed) == set(Finding.objects.visible_to(user))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", [Credential, ScopeGrant])
def test_identity_scoped_reads_are_exactly_visible_to(tangle, users, role, model):
    user = users[role]
    expected = set(model.objects.visible_to(user))
    assert set(selectors.scoped_by_identity(model.objects.all(), user=user)) == expected
    assert set(selectors.counted_by_identity(model.objects.all(), user=user)) == expected


def test_owner_home_counts_and_lists_exactly_their_open_findings(tangle, users):
    home = owner_home.owner_home(user=users["owner"], now=timezone.now())
    assert home["finding_counts"] == {"total": 4, "capped": False, "critical": 3, "critical_capped": False}
    assert [f.severity for f in home["findings"]] == ["critical", "critical", "critical", "high"]
    # Their live credentials expiring in two days: on their identity and the one behind their tool, not the others.
    assert home["credential_counts"] == {"total": 2, "capped": False}
    assert {c.identity.owner_id for c in home["credentials"]} == {users["owner"].pk, users["other_owner"].pk}


def test_owner_with_many_critical_findings_sees_the_oldest_first_and_a_capped_count(users, monkeypatch):
    """Past DENSE critical findings the list walks the open-by-age index instead of ranking the owner's whole set;
    the order must not change, and the counts stop at their cap."""
    monkeypatch.setattr(owner_home, "FINDINGS_COUNT_CAP", 30)
    monkeypatch.setattr(owner_home, "CRITICAL_COUNT_CAP", 25)
    monkeypatch.setattr(owner_home, "DENSE", 20)
    mine = users["owner"]
    tool = ToolFactory(owner=mine)
    identities = [IdentityFactory(owner=mine) for _ in range(40)]
    for age, identity in enumerate(identities):
        finding(subject=identity, severity="critical", tool=tool, identity=identity, days_open=age + 1)
    someone_elses = IdentityFactory(owner=users["other_owner"])
    finding(subject=someone_elses, severity="critical", identity=someone_elses, days_open=400)  # older, not theirs
    home = owner_home.owner_home(user=mine, now=timezone.now())
    assert [f.identity for f in home["findings"]] == identities[::-1][: owner_home.LIST_LENGTH]
    assert home["finding_counts"] == {"total": 30, "capped": True, "critical": 25, "critical_capped": True}
