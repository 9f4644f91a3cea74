"""Walk-around found in review, now refused: POST /events/ with a well-formed but impossible time: parse_datetime
raises ValueError, the view answers 500."""

import pytest
from rest_framework.test import APIClient

from tests.factories import IdentityFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("when", ["2024-13-45T00:00:00Z", "2024-02-30T10:00:00+00:00", "2024-01-01T25:00:00Z"])
def test_impossible_occurred_at_is_a_400(when):
    IdentityFactory(name="svc-x")
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(UserFactory(username="gw", roles=["gateway"]))
    body = {"events": [{"event_id": "e1", "occurred_at": when, "identity": "svc-x"}]}
    response = client.post("/api/v1/events/", body, format="json")
    assert response.status_code == 400, response.status_code
