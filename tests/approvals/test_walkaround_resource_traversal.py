"""Walk-around found in review, now refused: Resource canonicalisation lets '..' segments through when they end in
'?', '#', a trailing space, or U+2215."""

import pytest

from approvals import services
from inventory.resources import canonical_resource
from tests.factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "resource",
    [
        "project:payments/..?x",  # RFC 3986 remove_dot_segments: path '/payments/..' -> '/'
        "project:payments/..#frag",
        "project:payments/..%3Fx",  # same, percent-encoded '?'
        "project:payments/.. /billing",  # Windows strips trailing spaces from a segment
        "project:payments/..%20/billing",
        "project:payments/..\u2215billing",  # DIVISION SLASH, best-fit mapped to '/'
    ],
)
def test_dot_dot_segment_escapes_prefix(api_as, file_request, tool, identity, security, resource):
    alice = UserFactory(username="alice")
    tool.allowed_users.add(alice)
    CredentialFactory(identity=identity)
    request = file_request("read", resource="project:payments/*")
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "on_behalf_of": "alice", "scope": "kb:read"}
    ok = api_as("gateway").post("/api/v1/authorize/", body | {"resource": "project:payments/api"}, format="json")
    assert ok.json()["decision"] == "allow"
    answer = api_as("gateway").post("/api/v1/authorize/", body | {"resource": resource}, format="json").json()
    assert (answer["decision"], answer["reason"]) == ("deny", "invalid_resource"), answer
    assert canonical_resource(resource) is None, canonical_resource(resource)
