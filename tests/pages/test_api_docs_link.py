"""The API docs pages lead back to the portal."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_api_docs_link_back_to_the_portal(page_as, url):
    body = page_as("owner").get(url).content.decode()
    assert '<a href="/">← Back to NHI Portal</a>' in body
    assert body.count("<html") == 1  # the package's page, extended once, not nested
