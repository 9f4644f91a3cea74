"""Who may import, and secrets in an import never persisted, logged or echoed."""

import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from inventory.fingerprints import digest_secret
from inventory.imports.document import inventory_import
from inventory.models import (
    AITool,
)
from tests.inventory.import_fixtures import (
    SECRET,
    URL,
    full_document,
    paths,
    post,
)
from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db


def test_only_security_may_call_the_service(owner, manager):
    for actor in (owner, manager):
        with pytest.raises(PermissionDenied):
            inventory_import(actor=actor, document={})


# Permissions


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("owner", 403),
        ("other_owner", 403),
        ("security", 200),
        ("manager", 403),
        ("gateway", 403),
    ],
)
def test_only_security_may_import(api_as, role, expected):
    response = post(api_as(role), full_document())

    assert response.status_code == expected
    assert AITool.objects.exists() is (expected == 200)


def test_url_is_registered():
    assert reverse("import") == URL


# Secrets


def test_secret_is_never_persisted_logged_or_echoed(api_as, caplog):
    caplog.set_level(logging.DEBUG)

    response = post(api_as("security"), full_document())

    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert rows_containing(SECRET) == []
    assert rows_containing(SECRET[:-4]) == []
    assert SECRET not in caplog.text
    # The probe itself works: it finds a value that is stored.
    assert "inventory.Credential.fingerprint" in rows_containing(digest_secret(SECRET).fingerprint)


def test_secret_is_not_echoed_in_errors(api_as):
    document = full_document()
    short = "x7Q!"
    document["credentials"] = [
        {"identity": "svc-review", "kind": "api_key", "secret": short},
        {"identity": "svc-review", "kind": "api_key", "secret": SECRET, "last4": "abcd"},
        {"identity": "svc-review", "kind": "api_key", "secret": SECRET},
        {"identity": "svc-review", "kind": "api_key", "secret": SECRET},
        {"identity": "svc-review", "kind": SECRET, "secret": SECRET + " "},
    ]

    response = post(api_as("security"), document)

    assert response.status_code == 400
    assert paths(response.json()["errors"]) == {
        "credentials[0].secret",
        "credentials[1].secret",
        "credentials[3].fingerprint",
        "credentials[4].kind",
        "credentials[4].secret",
    }
    body = response.content.decode()
    assert short not in body
    assert SECRET not in body


# The management command
