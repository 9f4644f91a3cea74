"""`portal_page(role=...)`: the one place a page says who may open it. Deny by default: anonymous users go to sign
in, everyone signed in but outside the role gets 403, and a role the decorator does not know is refused when the view
is declared."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory

from nhi_portal.decorators import PAGE_ROLES, portal_page
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("anonymous", "owner", "other_owner", "security", "manager", "gateway")
# Who gets in, by page role; everyone else signed in gets 403, anonymous users the sign-in page.
ALLOWED = {
    "portal": {"owner", "other_owner", "security", "manager"},
    "write": {"owner", "other_owner", "security"},
    "oversight": {"security", "manager"},
    "security": {"security"},
}


def _answer(view, user):
    request = RequestFactory().get("/some/page/?x=1")
    request.user = user if user is not None else AnonymousUser()
    try:
        return view(request).status_code
    except PermissionDenied:
        return 403


@pytest.mark.parametrize("page_role", sorted(ALLOWED))
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(users, page_role, role):
    @portal_page(role=page_role)
    def view(request):
        return HttpResponse("in")

    expected = 302 if role == "anonymous" else 200 if role in ALLOWED[page_role] else 403
    assert _answer(view, users[role]) == expected


def test_the_bare_decorator_is_the_portal_role(users):
    @portal_page
    def view(request):
        return HttpResponse("in")

    assert {role for role in ROLES if _answer(view, users[role]) == 200} == ALLOWED["portal"]


def test_every_role_is_in_the_matrix():
    assert set(PAGE_ROLES) == set(ALLOWED)


def test_inactive_users_and_superusers():
    inactive_security = UserFactory(username="gone", roles=["security"], is_active=False)
    superuser = UserFactory(username="root", is_superuser=True)

    @portal_page(role="security")
    def view(request):
        return HttpResponse("in")

    assert _answer(view, inactive_security) == 403
    assert _answer(view, superuser) == 200


@pytest.mark.parametrize("role", ["admin", "Security", "", "read"])
def test_an_unknown_role_is_refused_when_declared(role):
    with pytest.raises(ValueError, match="unknown page role"):
        portal_page(role=role)


def test_views_check_no_role_inline():
    """Role checks live in the decorator; views keep only object-level checks (editable_by, grant_may_revoke)."""
    inline = re.compile(r"if not roles\.\w+\(request\.user\):\s+raise PermissionDenied")
    offenders = [
        path.relative_to(ROOT).as_posix()
        for folder in ("inventory", "approvals")
        for path in (ROOT / folder).rglob("views.py")
        if inline.search(path.read_text(encoding="utf-8")) or "_security_only" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
