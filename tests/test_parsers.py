"""JSON strings that no database can store are refused at the edge, on every API that takes JSON."""

import pytest

from inventory.models import AccessEvent, AITool

pytestmark = pytest.mark.django_db

LONE = "\\ud800"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/events/", f'{{"events": [{{"event_id": "{LONE}", "tool": "x", "identity": "y", "scope": "z"}}]}}'),
        ("/api/v1/tools/", f'{{"name": "ok", "slug": "ok", "kind": "agent", "environment": "dev", "x": ["{LONE}"]}}'),
        ("/api/v1/authorize/", f'{{"tool": "t", "identity": "i", "on_behalf_of": "u", "scope": "s", "{LONE}": 1}}'),
    ],
)
def test_lone_surrogate_anywhere_in_json_is_a_400_that_changes_nothing(api_as, path, body):
    response = api_as("security").post(path, body, content_type="application/json")
    assert response.status_code == 400
    assert "valid Unicode" in response.json()["detail"]
    assert not AccessEvent.objects.exists() and not AITool.objects.exists()


def test_valid_non_ascii_text_is_accepted(api_as):
    # A surrogate pair (an emoji) is valid; only a lone half is not.
    name = '"Support bot \\u00e9\\ud83d\\ude00"'
    body = f'{{"name": {name}, "slug": "support-bot", "kind": "assistant", "environment": "dev"}}'
    response = api_as("security").post("/api/v1/tools/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert AITool.objects.get().name == "Support bot \u00e9\U0001f600"
