"""A submitted secret is fingerprinted on arrival and never stored, logged or returned."""

import logging

import pytest
from django.core import mail
from django.urls import reverse

from inventory.fingerprints import digest_secret
from inventory.models import Credential
from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db

SECRET = "sk-live-9f8e7d6c5b4a39281706-SUPERSECRET"


def test_api_secret_is_fingerprinted_and_dropped(api_as, estate, caplog):
    caplog.set_level(logging.DEBUG)
    response = api_as("owner").post(
        "/api/v1/credentials/", {"identity": "owners-identity", "kind": "api_key", "secret": SECRET}
    )
    assert response.status_code == 201
    body = response.content.decode()
    assert SECRET not in body and "secret" not in response.json()
    assert response.json()["last4"] == SECRET[-4:]
    assert response.json()["fingerprint"] == digest_secret(SECRET).fingerprint
    assert rows_containing(SECRET) == []
    assert rows_containing(SECRET[:-4]) == []
    assert SECRET not in caplog.text
    assert all(SECRET not in m.body for m in mail.outbox)


def test_page_secret_is_fingerprinted_and_dropped(page_as, estate):
    identity = estate["identity"]
    response = page_as("owner").post(
        reverse("inventory:credential_add", args=[identity.pk]), {"kind": "api_key", "storage": "env", "secret": SECRET}
    )
    assert response.status_code == 302
    assert Credential.objects.filter(identity=identity, fingerprint=digest_secret(SECRET).fingerprint).exists()
    assert rows_containing(SECRET) == []
    page = page_as("owner").get(identity.get_absolute_url()).content.decode()
    assert SECRET not in page


def test_rejected_secret_is_not_echoed(page_as, api_as, estate):
    short = "tiny12"
    response = api_as("owner").post(
        "/api/v1/credentials/", {"identity": "owners-identity", "kind": "api_key", "secret": short}
    )
    assert response.status_code == 400
    assert short not in response.content.decode()
    page = page_as("owner").post(
        reverse("inventory:credential_add", args=[estate["identity"].pk]), {"kind": "api_key", "secret": short}
    )
    assert page.status_code == 400
    assert short not in page.content.decode()
    assert rows_containing(short) == []


def test_rotation_replaces_fingerprint(api_as, estate):
    credential = estate["credential"]
    response = api_as("owner").patch(f"/api/v1/credentials/{credential.pk}/", {"secret": SECRET})
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.fingerprint == digest_secret(SECRET).fingerprint
    assert credential.last_rotated_at is not None
    assert rows_containing(SECRET) == []


def test_same_secret_twice_on_one_identity_is_refused(api_as, estate):
    body = {"identity": "owners-identity", "kind": "api_key", "secret": SECRET}
    assert api_as("owner").post("/api/v1/credentials/", body).status_code == 201
    response = api_as("owner").post("/api/v1/credentials/", body)
    assert response.status_code == 400
    assert Credential.objects.filter(identity=estate["identity"]).count() == 2


def test_fingerprint_is_keyed(settings):
    before = digest_secret(SECRET).fingerprint
    settings.CREDENTIAL_FINGERPRINT_KEY = "another-key"
    assert digest_secret(SECRET).fingerprint != before
    assert SECRET not in repr(digest_secret(SECRET))
