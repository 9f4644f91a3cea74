"""List pages and API lists must not grow queries with rows: the same bound at 5 and at 200 rows."""

import pytest
from django.urls import reverse

from tests.factories import BindingFactory, CredentialFactory, GrantFactory, IdentityFactory, TeamFactory, ToolFactory

pytestmark = pytest.mark.django_db

# Session + user + roles + count + page (+ one prefetch); the bound is the same for 5 and 200 rows.
PAGE_QUERIES = 8
API_QUERIES = 7


def _estate(owner, n: int) -> None:
    team = TeamFactory()
    for i in range(n):
        tool = ToolFactory(owner=owner, team=team)
        identity = IdentityFactory(owner=owner)
        BindingFactory(tool=tool, identity=identity)
        CredentialFactory(identity=identity)
        if i % 2:
            GrantFactory(identity=identity, tool=tool)


LIST_URLS = [
    reverse("inventory:tool_list") + "?page_size=100",
    reverse("inventory:tool_list") + "?page_size=100&ordering=-owner&environment=prod&search=tool",
    reverse("inventory:identity_list") + "?page_size=100&ordering=last_used_at",
    # The home page ("/") has its own budget and test: tests/pages/test_home.py.
]


@pytest.mark.parametrize("rows", [5, 200])
@pytest.mark.parametrize("url", LIST_URLS)
@pytest.mark.parametrize("role", ["owner", "security"])
def test_pages_constant(page_as, users, django_assert_max_num_queries, rows, url, role):
    _estate(users["owner"], rows)
    client = page_as(role)
    with django_assert_max_num_queries(PAGE_QUERIES):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("rows", [5, 200])
@pytest.mark.parametrize("url", ["/tools/export.csv", "/identities/export.csv"])
def test_exports_constant(page_as, users, django_assert_max_num_queries, rows, url):
    _estate(users["owner"], rows)
    client = page_as("security")
    with django_assert_max_num_queries(PAGE_QUERIES):
        response = client.get(url)
        lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert len(lines) == rows + 1


@pytest.mark.parametrize("rows", [5, 200])
def test_tool_detail_constant(page_as, users, django_assert_max_num_queries, rows):
    owner = users["owner"]
    tool = ToolFactory(owner=owner)
    for _ in range(rows // 20 + 1):
        identity = IdentityFactory(owner=owner)
        BindingFactory(tool=tool, identity=identity)
        CredentialFactory.create_batch(20, identity=identity)
        GrantFactory(identity=identity, tool=tool)
    client = page_as("owner")
    with django_assert_max_num_queries(PAGE_QUERIES + 2):
        assert client.get(tool.get_absolute_url()).status_code == 200


@pytest.mark.parametrize("rows", [5, 200])
@pytest.mark.parametrize("path", ["tools", "identities", "credentials", "grants", "scopes"])
@pytest.mark.parametrize("role", ["owner", "security"])
def test_api_lists_constant(api_as, users, django_assert_max_num_queries, rows, path, role):
    _estate(users["owner"], rows)
    client = api_as(role)
    with django_assert_max_num_queries(API_QUERIES):
        response = client.get(f"/api/v1/{path}/?page_size=500")
    assert response.status_code == 200
