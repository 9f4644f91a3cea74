"""The Django admin cannot bypass governance: governed records are read-only there, the rest is audited."""

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory
from django.urls import reverse
from knox.models import AuthToken

from approvals.admin import PolicySettingsAdmin
from approvals.models import GatewayToolLimit, PolicySettings
from inventory.admin import AuditedChangesMixin
from inventory.models import AITool, AuditEntry, Credential, Scope, ServiceIdentity, Team
from tests.factories import CredentialFactory, IdentityFactory, ScopeFactory, TeamFactory, ToolFactory, UserFactory
from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db

SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_security(db):
    """A staff member of the security team, with the Django permissions the admin asks for on these models."""
    user = UserFactory(username="staff-sec", is_staff=True, roles=["security"])
    models = ["team", "scope", "aitool", "serviceidentity", "credential", "user", "group", "gatewaytoollimit"]
    user.user_permissions.set(Permission.objects.filter(content_type__model__in=models))
    return user


@pytest.fixture(params=["superuser", "staff_security"])
def admin_user(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def client_as():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def form_data(client: Client, url: str, **changes) -> dict:
    """What the change form would post back unchanged, with `changes` applied: built from the page's own form."""
    response = client.get(url)
    assert response.status_code == 200
    data = {}
    for bound in response.context["adminform"].form:
        if bound.field.disabled:
            continue
        value = bound.value()
        if isinstance(bound.field.widget, forms.MultiWidget):
            for n, part in enumerate(bound.field.widget.decompress(value)):
                data[f"{bound.html_name}_{n}"] = "" if part is None else str(part)
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        elif isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif value is not None:
            data[bound.html_name] = str(value)
    return data | changes


def entries(action: str, obj) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action, object_id=str(obj.pk)).order_by("id"))


# Tools, identities and credentials: read-only, their pages and API go through the services


@pytest.fixture
def governed(owner):
    tool = ToolFactory(owner=owner, slug="helpdesk", name="Helpdesk")
    identity = IdentityFactory(owner=owner, name="svc-helpdesk")
    return {"tool": tool, "identity": identity, "credential": CredentialFactory(identity=identity)}


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("tool", {"name": "Renamed", "prompt_templates": f"Use the key {SECRET} for billing."}),
        ("identity", {"name": "svc-renamed", "external_id": SECRET}),
        ("credential", {"storage": "prompt"}),
    ],
)
def test_tool_identity_and_credential_cannot_be_changed_in_the_admin(client_as, admin_user, governed, kind, changes):
    obj = governed[kind]
    stored = type(obj).objects.values().get(pk=obj.pk)
    client = client_as(admin_user)

    assert client.get(change_url(obj)).status_code == 200  # readable
    response = client.post(change_url(obj), changes)
    added = client.post(reverse(f"admin:inventory_{obj._meta.model_name}_add"), changes)
    deleted = client.post(reverse(f"admin:inventory_{obj._meta.model_name}_delete", args=[obj.pk]), {"post": "yes"})

    assert (response.status_code, added.status_code, deleted.status_code) == (403, 403, 403)
    assert type(obj).objects.values().get(pk=obj.pk) == stored
    assert not AuditEntry.objects.exists()
    assert rows_containing(SECRET) == []


def test_tool_identity_bindings_are_not_editable_inline(client_as, superuser, governed):
    response = client_as(superuser).get(change_url(governed["tool"]))

    (inline,) = response.context["inline_admin_formsets"]
    assert not (inline.has_add_permission or inline.has_change_permission or inline.has_delete_permission)


# What stays editable is audited, many-to-many fields included


def test_changing_team_members_is_audited_with_before_and_after(client_as, admin_user, owner, other_owner):
    team = TeamFactory(slug="platform", name="Platform")
    team.members.set([owner])
    client = client_as(admin_user)

    response = client.post(change_url(team), form_data(client, change_url(team), members=[owner.pk, other_owner.pk]))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert set(team.members.all()) == {owner, other_owner}
    (entry,) = entries("team.admin_changed", team)
    assert entry.actor == admin_user
    assert entry.before == {"members": [owner.pk]}
    assert entry.after == {"members": sorted([owner.pk, other_owner.pk])}


def test_saving_an_unchanged_team_writes_no_entry(client_as, superuser, owner):
    team = TeamFactory(slug="platform", name="Platform")
    team.members.set([owner])
    client = client_as(superuser)

    response = client.post(change_url(team), form_data(client, change_url(team)))

    assert response.status_code == 302
    assert not AuditEntry.objects.exists()


def test_adding_and_deleting_a_team_are_audited(client_as, superuser, owner):
    client = client_as(superuser)

    response = client.post(reverse("admin:inventory_team_add"), {"name": "SRE", "slug": "sre", "members": [owner.pk]})

    assert response.status_code == 302
    team = Team.objects.get(slug="sre")
    (added,) = entries("team.admin_added", team)
    assert added.before is None and added.after["members"] == [owner.pk] and added.after["name"] == "SRE"

    response = client.post(reverse("admin:inventory_team_delete", args=[team.pk]), {"post": "yes"})

    assert response.status_code == 302 and not Team.objects.filter(pk=team.pk).exists()
    (deleted,) = entries("team.admin_deleted", team)
    assert deleted.before["members"] == [owner.pk]


def test_changing_a_users_groups_is_audited_and_never_records_the_password(client_as, admin_user, owner):
    security = Group.objects.get_or_create(name="security")[0]
    # The form shows whole seconds, so a stored fraction would come back as a (real, audited) change.
    owner.date_joined = owner.date_joined.replace(microsecond=0)
    owner.save()
    client = client_as(admin_user)

    response = client.post(change_url(owner), form_data(client, change_url(owner), groups=[security.pk]))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert list(owner.groups.all()) == [security]
    (entry,) = entries("user.admin_changed", owner)
    assert (entry.before, entry.after) == ({"groups": []}, {"groups": [security.pk]})
    assert entry.actor == admin_user
    owner.refresh_from_db()
    assert rows_containing(owner.password) == ["auth.User.password"]


def test_a_password_change_in_the_admin_is_audited_as_the_fact_alone(client_as, superuser, owner):
    url = reverse("admin:auth_user_password_change", args=[owner.pk])
    password = "Another-Long-Passphrase-42"

    response = client_as(superuser).post(
        url, {"password1": password, "password2": password, "set_usable_password": "true"}
    )

    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(password)
    (entry,) = entries("user.admin_password_changed", owner)
    assert entry.before is None and entry.after is None
    assert rows_containing(owner.password) == ["auth.User.password"]
    assert rows_containing(password) == []


def test_changing_a_gateway_tool_limit_is_audited(client_as, admin_user, gateway, owner):
    token, _ = AuthToken.objects.create(user=gateway)
    limit = GatewayToolLimit.objects.create(token=token)
    first, second = ToolFactory(owner=owner), ToolFactory(owner=owner)
    limit.tools.set([first])
    client = client_as(admin_user)

    response = client.post(change_url(limit), form_data(client, change_url(limit), tools=[first.pk, second.pk]))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert set(limit.tools.all()) == {first, second}
    (entry,) = entries("gatewaytoollimit.admin_changed", limit)
    assert (entry.before, entry.after) == ({"tools": [first.pk]}, {"tools": sorted([first.pk, second.pk])})


def test_staff_without_the_security_role_cannot_write(client_as, owner):
    staff = UserFactory(username="staff", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__model__in=["team", "user"]))
    team = TeamFactory(slug="platform", name="Platform")
    client = client_as(staff)

    assert (
        client.post(change_url(team), {"name": "Platform", "slug": "platform", "members": [owner.pk]}).status_code
        == 403
    )
    assert client.post(change_url(owner), {"username": "owner", "is_superuser": "on"}).status_code == 403

    assert not team.members.exists()
    owner.refresh_from_db()
    assert not owner.is_superuser
    assert not AuditEntry.objects.exists()


def test_a_secret_in_free_text_is_refused(client_as, superuser):
    scope = ScopeFactory(name="kb:read")
    client = client_as(superuser)

    response = client.post(change_url(scope), form_data(client, change_url(scope), description=f"token={SECRET}"))

    assert response.status_code == 200
    assert "description" in response.context["adminform"].form.errors
    assert rows_containing(SECRET) == []
    assert Scope.objects.get(pk=scope.pk).description == ""


# Policy settings go through their service


def test_policy_settings_are_saved_and_audited_by_their_service(client_as, superuser):
    client = client_as(superuser)

    response = client.post(
        reverse("admin:approvals_policysettings_add"), {"auto_approve_low_risk": "on", "auto_approve_max_days": "7"}
    )

    assert response.status_code == 302
    settings = PolicySettings.objects.get()
    assert (settings.auto_approve_low_risk, settings.updated_by) == (True, superuser)
    (entry,) = AuditEntry.objects.filter(action="policy.updated")
    assert entry.after == {"auto_approve_low_risk": True, "auto_approve_max_days": 7}

    refused = client.post(change_url(settings), {"auto_approve_low_risk": "on", "auto_approve_max_days": "500"})

    assert refused.status_code == 302
    assert PolicySettings.objects.get().auto_approve_max_days == 7
    assert AuditEntry.objects.filter(action="policy.updated").count() == 1
    delete = client.post(reverse("admin:approvals_policysettings_delete", args=[settings.pk]), {"post": "yes"})
    assert delete.status_code == 403 and PolicySettings.objects.exists()


# Nothing in any app's admin writes unaudited: the portal's, auth, API tokens, periodic tasks, sign-in lockouts


def test_every_admin_is_read_only_audited_or_routed_through_a_service(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    writable = []
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, AuditedChangesMixin | PolicySettingsAdmin):
            continue
        may = (
            model_admin.has_add_permission(request),
            model_admin.has_change_permission(request),
            model_admin.has_delete_permission(request),
        )
        if any(may):
            writable.append(model._meta.label)
    assert writable == []
    for model in (AITool, ServiceIdentity, Credential):
        assert not isinstance(admin.site._registry[model], AuditedChangesMixin)


def test_deleting_an_api_token_in_the_admin_is_audited(superuser):
    from tests.factories import UserFactory

    instance, _ = AuthToken.objects.create(user=UserFactory(username="gw2", roles=["gateway"]))
    client = Client()
    client.force_login(superuser)
    url = reverse("admin:knox_authtoken_delete", args=[instance.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not AuthToken.objects.filter(pk=instance.pk).exists()
    assert AuditEntry.objects.filter(action="authtoken.admin_deleted").exists()


def test_bulk_actions_that_bypass_the_audit_are_gone(superuser):
    """django-celery-beat's "disable selected tasks" updates rows in bulk, past the audit: it must not be offered."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(name="seal", task="inventory.tasks.seal_audit_trail", interval=every)
    client = Client()
    client.force_login(superuser)
    url = reverse("admin:django_celery_beat_periodictask_changelist")
    client.post(url, {"action": "disable_tasks", "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert task.enabled
    request = RequestFactory().get(url)
    request.user = superuser
    for model_admin in admin.site._registry.values():
        assert set(model_admin.get_actions(request)) <= {"delete_selected"}
