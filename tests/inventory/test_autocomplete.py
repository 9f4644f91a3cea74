"""Issue 17: the tool form picks users and identities by typing (JSON endpoints + static/js/autocomplete.js) instead
of listing every one of them."""

import json

import pytest
from django.urls import reverse

from inventory.models import AITool
from tests.factories import BindingFactory, IdentityFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db
ENDPOINTS = ["inventory:autocomplete_users", "inventory:autocomplete_identities"]


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("owner", 200), ("other_owner", 200), ("security", 200), ("manager", 403), ("gateway", 403)],
)
def test_endpoints_are_for_those_who_may_write(page_as, name, role, status):
    assert page_as(role).get(reverse(name), {"q": "a"}).status_code == status


def _results(response) -> list[str]:
    assert response["Content-Type"] == "application/json"
    return [row["label"] for row in json.loads(response.content)["results"]]


def test_identities_are_only_those_the_user_may_bind(page_as, owner, other_owner):
    IdentityFactory(name="svc-mine-reader", owner=owner)
    IdentityFactory(name="svc-theirs-reader", owner=other_owner)
    url = reverse("inventory:autocomplete_identities")
    assert _results(page_as("owner").get(url, {"q": "reader"})) == ["svc-mine-reader"]
    assert _results(page_as("other_owner").get(url, {"q": "reader"})) == ["svc-theirs-reader"]
    assert _results(page_as("security").get(url, {"q": "READER"})) == ["svc-mine-reader", "svc-theirs-reader"]
    assert _results(page_as("owner").get(url, {"q": "nothing-like-it"})) == []


def test_users_are_active_ones_matching_and_at_most_twenty(page_as):
    for i in range(25):
        UserFactory(username=f"alice{i:02d}", first_name="Alice")
    UserFactory(username="alice-gone", is_active=False)
    found = _results(page_as("owner").get(reverse("inventory:autocomplete_users"), {"q": "alice"}))
    assert len(found) == 20 and found[0] == "alice00 (Alice)" and "alice-gone" not in " ".join(found)
    # Odd input is just text that matches nothing; never an error.
    for q in ("%", "_", "'; drop table", "x" * 500, "\u202e"):
        assert page_as("owner").get(reverse("inventory:autocomplete_users"), {"q": q}).status_code == 200


@pytest.mark.parametrize("extra", [5, 200])
def test_tool_form_renders_only_the_chosen_people_and_identities(
    page_as, security, extra, django_assert_max_num_queries
):
    tool = ToolFactory(owner=security)
    chosen = IdentityFactory(name="svc-chosen", owner=security)
    BindingFactory(tool=tool, identity=chosen)
    person = UserFactory(username="chosen-person")
    tool.allowed_users.add(person)
    for i in range(extra):
        UserFactory(username=f"bystander{i}")
        IdentityFactory(name=f"svc-bystander-{i}", owner=security)
    client = page_as("security")
    with django_assert_max_num_queries(16):
        body = client.get(reverse("inventory:tool_edit", args=[tool.pk])).content.decode()
    assert "svc-chosen" in body and "chosen-person" in body
    assert "bystander" not in body
    assert (
        'data-autocomplete="/autocomplete/identities/"' in body and 'data-autocomplete="/autocomplete/users/"' in body
    )
    assert "js/autocomplete.js" in body


def _form_data(tool: AITool, **changes) -> dict:
    data = {
        "name": tool.name, "slug": tool.slug, "kind": tool.kind, "vendor": tool.vendor, "team": tool.team_id,
        "environment": tool.environment, "data_classification": tool.data_classification, "status": tool.status,
        "description": tool.description, "prompt_templates": "", "connector_config": "",
    }  # fmt: skip
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_submitted_ids_are_checked_against_what_the_user_may_pick(page_as, owner, other_owner):
    tool = ToolFactory(owner=owner)
    mine = IdentityFactory(name="svc-mine", owner=owner)
    theirs = IdentityFactory(name="svc-theirs", owner=other_owner)
    client = page_as("owner")
    url = reverse("inventory:tool_edit", args=[tool.pk])
    refused = client.post(url, _form_data(tool, identities=[theirs.pk]))
    assert refused.status_code == 200 and "Select valid choices" in refused.content.decode()
    assert not tool.identities.exists()
    saved = client.post(url, _form_data(tool, identities=[mine.pk], allowed_users=[other_owner.pk]))
    assert saved.status_code == 302
    assert list(tool.identities.all()) == [mine] and list(tool.allowed_users.all()) == [other_owner]


def test_security_picks_the_owner_by_typing(page_as, security, owner):
    tool = ToolFactory(owner=owner)
    body = page_as("security").get(reverse("inventory:tool_edit", args=[tool.pk])).content.decode()
    owner_select = body.split('name="owner"', 1)[1].split("</select>", 1)[0]
    assert owner_select.count("<option") == 1 and ">owner<" in owner_select
