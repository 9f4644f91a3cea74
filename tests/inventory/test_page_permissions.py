"""Every inventory page against every role, from the outside. Others' objects are 404; deny by default."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "owner", "other_owner", "security", "manager", "gateway")


def _expect(table: dict[str, int]):
    return [pytest.param(role, table[role], id=role) for role in ROLES]


READ_ANY = {"anonymous": 302, "owner": 200, "other_owner": 200, "security": 200, "manager": 200, "gateway": 403}
READ_OWN = {"anonymous": 302, "owner": 200, "other_owner": 404, "security": 200, "manager": 200, "gateway": 403}
EDIT_OWN = {"anonymous": 302, "owner": 200, "other_owner": 404, "security": 200, "manager": 403, "gateway": 403}
CREATE = {"anonymous": 302, "owner": 200, "other_owner": 200, "security": 200, "manager": 403, "gateway": 403}


@pytest.mark.parametrize("name", ["inventory:dashboard", "inventory:tool_list", "inventory:identity_list"])
@pytest.mark.parametrize(("role", "status"), _expect(READ_ANY))
def test_list_pages(page_as, estate, name, role, status):
    response = page_as(role).get(reverse(name))
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["inventory:tool_export", "inventory:identity_export"])
@pytest.mark.parametrize(("role", "status"), _expect(READ_ANY))
def test_csv_exports(page_as, estate, name, role, status):
    response = page_as(role).get(reverse(name))
    assert response.status_code == status


@pytest.mark.parametrize(("role", "status"), _expect(READ_OWN))
def test_tool_detail(page_as, estate, role, status):
    assert page_as(role).get(reverse("inventory:tool_detail", args=[estate["tool"].pk])).status_code == status


@pytest.mark.parametrize(("role", "status"), _expect(READ_OWN))
def test_identity_detail(page_as, estate, role, status):
    url = reverse("inventory:identity_detail", args=[estate["identity"].pk])
    assert page_as(role).get(url).status_code == status


@pytest.mark.parametrize(("role", "status"), _expect(EDIT_OWN))
def test_tool_edit_form(page_as, estate, role, status):
    assert page_as(role).get(reverse("inventory:tool_edit", args=[estate["tool"].pk])).status_code == status


@pytest.mark.parametrize(("role", "status"), _expect(EDIT_OWN))
def test_identity_edit_form(page_as, estate, role, status):
    url = reverse("inventory:identity_edit", args=[estate["identity"].pk])
    assert page_as(role).get(url).status_code == status


@pytest.mark.parametrize("name", ["inventory:tool_create", "inventory:identity_create"])
@pytest.mark.parametrize(("role", "status"), _expect(CREATE))
def test_create_forms(page_as, estate, name, role, status):
    assert page_as(role).get(reverse(name)).status_code == status


@pytest.mark.parametrize(
    ("role", "status"),
    _expect({"anonymous": 302, "owner": 302, "other_owner": 404, "security": 302, "manager": 403, "gateway": 403}),
)
def test_tool_edit_post(page_as, estate, role, status):
    tool = estate["tool"]
    data = {"name": "Renamed", "slug": tool.slug, "kind": tool.kind, "environment": "dev"}
    data |= {"data_classification": tool.data_classification, "status": tool.status}
    response = page_as(role).post(reverse("inventory:tool_edit", args=[tool.pk]), data)
    assert response.status_code == status
    tool.refresh_from_db()
    changed = role in ("owner", "security")
    assert (tool.name == "Renamed") is changed
    if changed:
        assert response["Location"] == tool.get_absolute_url()


@pytest.mark.parametrize(
    ("role", "status"),
    _expect({"anonymous": 302, "owner": 302, "other_owner": 404, "security": 302, "manager": 403, "gateway": 403}),
)
def test_credential_add_post(page_as, estate, role, status):
    identity = estate["identity"]
    url = reverse("inventory:credential_add", args=[identity.pk])
    response = page_as(role).post(url, {"kind": "api_key", "storage": "vault", "secret": "sk-test-permission-1"})
    assert response.status_code == status
    assert identity.credentials.count() == (2 if role in ("owner", "security") else 1)


def test_owner_lists_show_only_own(page_as, estate):
    body = page_as("owner").get(reverse("inventory:tool_list")).content.decode()
    assert "Owner&#x27;s tool" in body and "Other&#x27;s tool" not in body
    csv_body = b"".join(page_as("owner").get(reverse("inventory:tool_export")).streaming_content).decode()
    assert "owners-tool" in csv_body and "others-tool" not in csv_body


def test_manager_sees_everything_without_edit_controls(page_as, estate):
    body = page_as("manager").get(reverse("inventory:tool_detail", args=[estate["tool"].pk])).content.decode()
    assert reverse("inventory:tool_edit", args=[estate["tool"].pk]) not in body
    listing = page_as("manager").get(reverse("inventory:tool_list")).content.decode()
    assert "Owner&#x27;s tool" in listing and "Other&#x27;s tool" in listing


@pytest.mark.parametrize("role", ["owner", "other_owner", "security", "manager", "gateway"])
def test_in_memory_edit_check_matches_the_queryset(users, estate, role):
    from inventory.models import AITool, ServiceIdentity
    from inventory.models.querysets import owner_may_edit

    user = users[role]
    for model, obj in ((AITool, estate["tool"]), (ServiceIdentity, estate["identity"])):
        assert owner_may_edit(user, obj) == model.objects.editable_by(user).filter(pk=obj.pk).exists()


@pytest.mark.parametrize("role", ["owner", "other_owner", "security", "manager", "gateway"])
def test_in_memory_tool_visibility_matches_the_queryset(users, estate, role):
    from inventory.models import AITool
    from inventory.models.querysets import tool_visible_to

    user, tool = users[role], estate["tool"]
    assert tool_visible_to(user, tool) == AITool.objects.visible_to(user).filter(pk=tool.pk).exists()
