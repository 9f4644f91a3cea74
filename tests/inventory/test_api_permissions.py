"""Every inventory endpoint against every role, from the outside: 401 anonymous, 403 wrong role, 404 not yours."""

import pytest

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "owner", "other_owner", "security", "manager", "gateway")


def _expect(table: dict[str, int]):
    return [pytest.param(role, table[role], id=role) for role in ROLES]


READ_ANY = {"anonymous": 401, "owner": 200, "other_owner": 200, "security": 200, "manager": 200, "gateway": 403}
READ_OWN = {"anonymous": 401, "owner": 200, "other_owner": 404, "security": 200, "manager": 200, "gateway": 403}
WRITE_OWN = {"anonymous": 401, "owner": 200, "other_owner": 404, "security": 200, "manager": 403, "gateway": 403}
CREATE = {"anonymous": 401, "owner": 201, "other_owner": 201, "security": 201, "manager": 403, "gateway": 403}


@pytest.mark.parametrize("path", ["tools", "identities", "credentials", "scopes", "grants"])
@pytest.mark.parametrize(("role", "status"), _expect(READ_ANY))
def test_lists(api_as, estate, path, role, status):
    assert api_as(role).get(f"/api/v1/{path}/").status_code == status


@pytest.mark.parametrize("kind", ["tool", "identity", "credential", "grant"])
@pytest.mark.parametrize(("role", "status"), _expect(READ_OWN))
def test_detail(api_as, estate, kind, role, status):
    path = {"tool": "tools", "identity": "identities", "credential": "credentials", "grant": "grants"}[kind]
    assert api_as(role).get(f"/api/v1/{path}/{estate[kind].pk}/").status_code == status


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("tool", {"description": "patched"}),
        ("identity", {"external_id": "patched"}),
        ("credential", {"storage": "env"}),
    ],
)
@pytest.mark.parametrize(("role", "status"), _expect(WRITE_OWN))
def test_patch(api_as, estate, kind, body, role, status):
    path = {"tool": "tools", "identity": "identities", "credential": "credentials"}[kind]
    response = api_as(role).patch(f"/api/v1/{path}/{estate[kind].pk}/", body)
    assert response.status_code == status
    obj = estate[kind]
    obj.refresh_from_db()
    field, value = next(iter(body.items()))
    assert (getattr(obj, field) == value) is (status == 200)


@pytest.mark.parametrize(
    ("role", "status"),
    _expect({"anonymous": 401, "owner": 204, "other_owner": 404, "security": 204, "manager": 403, "gateway": 403}),
)
def test_delete_tool(api_as, estate, role, status):
    from inventory.models import AITool

    assert api_as(role).delete(f"/api/v1/tools/{estate['tool'].pk}/").status_code == status
    assert AITool.objects.filter(pk=estate["tool"].pk).exists() is (status != 204)


@pytest.mark.parametrize(("role", "status"), _expect(CREATE))
def test_create_tool(api_as, users, estate, role, status):
    body = {"name": "New tool", "slug": f"new-{role}", "kind": "agent", "environment": "dev"}
    response = api_as(role).post("/api/v1/tools/", body)
    assert response.status_code == status
    if status == 201:
        assert response.json()["owner"] == users[role].username


@pytest.mark.parametrize(("role", "status"), _expect(CREATE))
def test_create_identity(api_as, estate, role, status):
    body = {"name": f"svc-new-{role}", "kind": "api_key", "provider": "openai", "environment": "dev"}
    assert api_as(role).post("/api/v1/identities/", body).status_code == status


@pytest.mark.parametrize(
    ("role", "status"),
    # Another owner cannot name this identity at all: it reads as unknown (400), never as "exists but forbidden".
    _expect({"anonymous": 401, "owner": 201, "other_owner": 400, "security": 201, "manager": 403, "gateway": 403}),
)
def test_create_credential(api_as, estate, role, status):
    body = {"identity": "owners-identity", "kind": "api_key", "secret": f"sk-perm-test-{role}-000"}
    response = api_as(role).post("/api/v1/credentials/", body)
    assert response.status_code == status
    if status == 400:
        assert response.json() == {"identity": ["No service identity with that id or name that you can use."]}


def test_owner_lists_are_scoped(api_as, estate):
    slugs = {t["slug"] for t in api_as("owner").get("/api/v1/tools/").json()["results"]}
    assert slugs == {"owners-tool"}
    other = api_as("other_owner")
    assert {t["slug"] for t in other.get("/api/v1/tools/").json()["results"]} == {"others-tool"}
    assert other.get("/api/v1/identities/").json()["count"] == 0
    assert other.get("/api/v1/credentials/").json()["count"] == 0
    assert other.get("/api/v1/grants/").json()["count"] == 0


def test_owner_cannot_hand_tool_to_someone_else(api_as, estate, other_owner):
    response = api_as("owner").patch(f"/api/v1/tools/{estate['tool'].pk}/", {"owner": other_owner.username})
    assert response.status_code == 400
    assert "owner" in response.json()
    estate["tool"].refresh_from_db()
    assert estate["tool"].owner.username == "owner"


def test_owner_cannot_bind_someone_elses_identity(api_as, estate, other_owner):
    from tests.factories import IdentityFactory

    foreign = IdentityFactory(owner=other_owner, name="foreign-identity")
    response = api_as("owner").patch(f"/api/v1/tools/{estate['tool'].pk}/", {"identities": [foreign.name]})
    assert response.status_code == 400
    assert not estate["tool"].bindings.filter(identity=foreign).exists()


def test_security_can_reassign_owner(api_as, estate, other_owner):
    response = api_as("security").patch(f"/api/v1/tools/{estate['tool'].pk}/", {"owner": other_owner.username})
    assert response.status_code == 200
    assert response.json()["owner"] == other_owner.username


@pytest.mark.parametrize(
    ("role", "status"),
    _expect({"anonymous": 401, "owner": 200, "other_owner": 200, "security": 200, "manager": 200, "gateway": 200}),
)
def test_me(api_as, role, status):
    response = api_as(role).get("/api/v1/me/")
    assert response.status_code == status
    if role == "gateway":
        assert response.json() == {"username": "gw", "roles": ["gateway"]}
