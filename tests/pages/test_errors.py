"""The 403 and 404 pages: inside the portal, with navigation home and a line on why, never a bare server page."""

import pytest
from django.urls import reverse

from tests.factories import ToolFactory

pytestmark = pytest.mark.django_db


def test_another_owners_tool_is_a_404_page_that_says_why_and_leads_home(page_as, users):
    tool = ToolFactory(owner=users["other_owner"])
    response = page_as("owner").get(tool.get_absolute_url())
    assert response.status_code == 404
    body = response.content.decode()
    assert "belongs to another owner" in body
    assert f'href="{reverse("home:home")}"' in body and 'aria-label="Main"' in body


def test_a_page_of_another_role_is_a_403_page_that_says_why(page_as):
    response = page_as("owner").get(reverse("approvals:review_queue"))
    assert response.status_code == 403
    body = response.content.decode()
    assert "You cannot open this page" in body and "security team" in body
    assert 'aria-label="Main"' in body


def test_the_favicon_is_linked(page_as):
    assert 'rel="icon"' in page_as("owner").get("/").content.decode()
