"""A value that fails validation never comes back in the error: a secret pasted into a choice field, a related-object
field or a filter stays out of the 400 answer and the form page (and so out of logs, screenshots and tickets)."""

import importlib
import pkgutil

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework import serializers

import approvals
import inventory
from inventory.filters import IdentityFilter, ToolFilter

pytestmark = pytest.mark.django_db

SECRET = "sk-live-4f9b2c7e1a0d48e6b3c5d7f9a1b2c3d4"
SECRET_USERNAME = "ghp_R4nd0mT0k3nL00k1ngUs3rn4m3xyz"
ECHO_PLACEHOLDERS = ("{input}", "{value}", "{pk_value}", "%(value)", "%(pk)")


def assert_not_echoed(response, *values) -> None:
    body = response.content.decode()
    for value in values:
        assert value not in body, f"{value!r} came back in the {response.status_code} answer"


def tool_body(**overrides):
    return {"name": "Echo tool", "slug": "echo-tool", "kind": "agent", "environment": "dev"} | overrides


@pytest.mark.parametrize("field", ["environment", "kind", "data_classification", "status"])
def test_api_choice_field(api_as, field):
    response = api_as("security").post("/api/v1/tools/", tool_body(**{field: SECRET}))
    assert response.status_code == 400 and field in response.json()
    assert_not_echoed(response, SECRET)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("owner", SECRET_USERNAME),
        ("team", SECRET),
        ("identities", [SECRET]),
        ("allowed_users", [SECRET_USERNAME]),
        ("allowed_teams", [SECRET]),
    ],
)
def test_api_related_field(api_as, field, value):
    response = api_as("security").post("/api/v1/tools/", tool_body(**{field: value}))
    assert response.status_code == 400 and field in response.json()
    assert_not_echoed(response, SECRET, SECRET_USERNAME)


@pytest.mark.parametrize("field", ["tool", "identity", "scopes"])
def test_api_request_create(api_as, field):
    body = {"tool": "x", "identity": "y", "scopes": ["z"], "justification": "Because it must.", "duration_days": 7}
    body[field] = [SECRET] if field == "scopes" else SECRET
    response = api_as("owner").post("/api/v1/requests/", body)
    assert response.status_code == 400
    assert_not_echoed(response, SECRET)


@pytest.mark.parametrize("query", [{"environment": SECRET}, {"kind": SECRET}, {"ordering": SECRET}])
def test_api_filter(api_as, query):
    response = api_as("security").get("/api/v1/tools/", query)
    assert response.status_code == 400
    assert_not_echoed(response, SECRET)


def test_html_tool_form(page_as):
    data = {"name": "Echo tool", "slug": "echo-tool", "kind": "agent", "environment": SECRET, "owner": SECRET_USERNAME}
    data |= {"data_classification": "internal", "status": "active", "allowed_users": [SECRET_USERNAME]}
    response = page_as("security").post(reverse("inventory:tool_create"), data)
    assert response.status_code in (200, 400)
    body = response.content.decode()
    assert "errorlist" in body or "invalid" in body, "the form should have been refused"
    assert_not_echoed(response, SECRET, SECRET_USERNAME)


def test_html_request_form(page_as):
    data = {"tool": SECRET, "identity": SECRET, "scopes": [SECRET], "justification": "x", "duration_days": 7}
    response = page_as("owner").post(reverse("approvals:request_create"), data)
    assert response.status_code in (200, 400)
    assert_not_echoed(response, SECRET)


@pytest.mark.parametrize("filterset", [ToolFilter, IdentityFilter])
def test_page_filters(filterset):
    bound = filterset({"environment": SECRET, "kind": SECRET, "ordering": SECRET})
    assert not bound.is_valid()
    assert SECRET not in str(bound.errors)


def test_drf_stock_fields_do_not_echo(owner):
    User = get_user_model()
    for field, value in [
        (serializers.ChoiceField(choices=["a", "b"]), SECRET),
        (serializers.MultipleChoiceField(choices=["a", "b"]), [SECRET]),
        (serializers.SlugRelatedField(queryset=User.objects.all(), slug_field="username"), SECRET_USERNAME),
        (serializers.PrimaryKeyRelatedField(queryset=User.objects.all()), 987654321),
    ]:
        with pytest.raises(serializers.ValidationError) as raised:
            field.run_validation(value)
        assert str(value).strip("[]'") not in str(raised.value.detail)


def test_django_stock_fields_do_not_echo():
    User = get_user_model()
    for field, value in [
        (forms.ChoiceField(choices=[("a", "A")]), SECRET),
        (forms.TypedChoiceField(choices=[("a", "A")]), SECRET),
        (forms.MultipleChoiceField(choices=[("a", "A")]), [SECRET]),
        (forms.ModelChoiceField(queryset=User.objects.all()), SECRET),
        (forms.ModelMultipleChoiceField(queryset=User.objects.all()), [SECRET]),
        (forms.ModelMultipleChoiceField(queryset=User.objects.all()), ["1", "987654321"]),
    ]:
        with pytest.raises(forms.ValidationError) as raised:
            field.clean(value)
        assert SECRET not in str(raised.value.messages) and "987654321" not in str(raised.value.messages)


def _project_modules():
    for package in (inventory, approvals):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" not in module.name:
                yield importlib.import_module(module.name)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_project_form_and_serializer_uses_the_quiet_messages():
    """Declared form fields copy their messages when the class is defined: this fails if that happened before the
    project's messages were installed (nhi_portal.apps), whichever module defines the form."""
    modules = {module.__name__ for module in _project_modules()}
    checked = 0
    for form in _subclasses(forms.BaseForm):
        if form.__module__ in modules:
            for name, field in form.base_fields.items():
                for message in field.error_messages.values():
                    assert not any(p in str(message) for p in ECHO_PLACEHOLDERS), f"{form.__name__}.{name}: {message}"
                checked += 1
    for serializer in _subclasses(serializers.BaseSerializer):
        if serializer.__module__ not in modules:
            continue
        try:
            fields = serializer().fields
        except (TypeError, AssertionError):
            continue
        for name, field in fields.items():
            for inner in (field, getattr(field, "child", None), getattr(field, "child_relation", None)):
                for message in getattr(inner, "error_messages", {}).values():
                    assert not any(p in str(message) for p in ECHO_PLACEHOLDERS), f"{serializer.__name__}.{name}"
            checked += 1
    assert checked > 50
