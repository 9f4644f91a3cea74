"""Single sign-on without a browser, against the same real provider: the rules around the library (issuer, existing
users, usernames, the groups claim), the pages when SSO is off, and password sign-in turned off."""

import re
import subprocess
import sys
from urllib.parse import urljoin

import pytest
import requests
from django.test import Client

from inventory.models import AuditEntry
from operations.models import SsoIdentity
from operations.sso_backend import roles_from_claims
from tests.factories import UserFactory


def sign_in(portal: str, login: str) -> requests.Response:
    """The code flow as a browser would run it: portal, provider sign-in and consent pages, back to the portal."""
    session = requests.Session()
    page = session.get(f"{portal}/oidc/authenticate/?next=/tools/", timeout=20)
    for prompt, fields in (("login", {"login": login, "password": "any"}), ("consent", {})):
        if f'name="prompt" value="{prompt}"' not in page.text:
            continue
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
        page = session.post(urljoin(page.url, action), data={"prompt": prompt, **fields}, timeout=20)
    return page


def test_sign_in_lands_where_asked_and_keeps_roles_in_step(live_server, sso, django_user_model):
    sso.set_account("grace", preferred_username="grace", email="grace@example.test", groups=["staff", "security"])
    page = sign_in(live_server.url, "grace")
    assert page.url == f"{live_server.url}/tools/"
    assert "grace · security" in page.text
    grace = django_user_model.objects.get(username="grace")
    assert set(grace.groups.values_list("name", flat=True)) == {"security"}  # "staff" maps to no portal role
    # The same roles again: no audit entry for a change that did not happen.
    sign_in(live_server.url, "grace")
    assert AuditEntry.objects.filter(action="user.roles_from_sso", object_id=str(grace.pk)).count() == 1
    sso.set_account("grace", preferred_username="grace", email="grace@example.test")  # no groups claim at all
    sign_in(live_server.url, "grace")
    assert not grace.groups.exists()


def test_a_token_from_another_issuer_is_refused(live_server, sso, settings, django_user_model):
    settings.OIDC_OP_ISSUER = "https://idp.example.test"
    sso.set_account("mallory", preferred_username="mallory", groups=["security"])
    page = sign_in(live_server.url, "mallory")
    assert page.status_code == 400
    assert not django_user_model.objects.filter(username="mallory").exists()


def test_a_local_user_of_the_same_name_is_not_taken_over(live_server, sso, settings):
    local = UserFactory(username="alice", roles=["security"])
    sso.set_account("alice-at-idp", preferred_username="alice", groups=[])
    page = sign_in(live_server.url, "alice-at-idp")
    assert page.url == f"{live_server.url}/accounts/login/?sso=failed"
    assert "Single sign-on did not sign you in" in page.text
    assert not SsoIdentity.objects.exists()
    settings.OIDC_LINK_EXISTING_USERS = True
    page = sign_in(live_server.url, "alice-at-idp")
    assert "alice" in page.text
    assert SsoIdentity.objects.get().user == local
    assert not local.groups.exists()  # the claim, not the local account, says which roles


def test_an_unusable_username_claim_is_refused(live_server, sso, django_user_model):
    sso.set_account("bad", preferred_username="no spaces allowed!", groups=["security"])
    assert sign_in(live_server.url, "bad").url.endswith("/accounts/login/?sso=failed")
    assert not django_user_model.objects.filter(username__contains="spaces").exists()


def test_a_forged_callback_signs_nobody_in(live_server, sso):
    session = requests.Session()
    answer = session.get(
        f"{live_server.url}/oidc/callback/?code=forged&state=forged", timeout=20, allow_redirects=False
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, "/accounts/login/?sso=failed")
    # With a sign-in under way, a state it did not issue: refused as suspicious (400), never a 500.
    session.get(f"{live_server.url}/oidc/authenticate/", timeout=20, allow_redirects=False)
    answer = session.get(
        f"{live_server.url}/oidc/callback/?code=forged&state=forged", timeout=20, allow_redirects=False
    )
    assert answer.status_code == 400


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        ({"groups": ["security", "manager"]}, {"security", "manager"}),
        ({"groups": "gateway"}, {"gateway"}),
        ({"groups": [None, 3, {"x": 1}]}, set()),
        ({"groups": {"security": True}}, set()),
        ({}, set()),
    ],
)
def test_roles_from_claims(settings, claims, roles):
    assert roles_from_claims(claims) == roles


def test_mapped_group_names_come_from_settings(settings):
    settings.OIDC_ROLE_GROUPS = {"security": ["sec-team"], "manager": [], "gateway": [], "superuser": ["sec-team"]}
    assert roles_from_claims({"groups": ["sec-team", "security"]}) == {"security"}


def test_without_sso_its_routes_are_404_and_the_page_has_only_the_password_form(client, db):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    page = client.get("/accounts/login/").content.decode()
    assert 'name="password"' in page and "single sign-on" not in page


def test_password_sign_in_turned_off(settings, db):
    settings.PASSWORD_LOGIN_ENABLED = False
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "operations.sso_backend.PermissionsOnlyBackend",
    ]
    UserFactory(username="root", password="correct-horse-battery", is_staff=True, is_superuser=True)
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert 'name="password"' not in page
    refused = client.post("/accounts/login/", {"username": "root", "password": "correct-horse-battery"})
    assert refused.status_code == 403
    admin = client.post("/admin/login/", {"username": "root", "password": "correct-horse-battery"})
    assert admin.status_code == 200  # the admin's form again, with its error
    assert "_auth_user_id" not in client.session


def test_settings_swap_the_password_backend_and_refuse_half_configured_sso():
    code = "import django; django.setup(); from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS)"
    env = {"DJANGO_SETTINGS_MODULE": "nhi_portal.settings.test", "PASSWORD_LOGIN_ENABLED": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "operations.sso_backend.PermissionsOnlyBackend" in out and "ModelBackend'" not in out
    half = subprocess.run(
        [sys.executable, "-c", code], env=env | {"OIDC_RP_CLIENT_ID": "x"}, capture_output=True, text=True
    )
    assert half.returncode != 0 and "Single sign-on needs OIDC_OP_ISSUER" in half.stderr
