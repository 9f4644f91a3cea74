"""The Django admin: governed records are read-only here or audited like every other change.

Tools, identities and credentials are edited only through their pages and API, whose services check
permissions, redact secrets and audit. What stays editable here (teams, scopes, users and groups, gateway tool
limits) goes through `AuditedChangesMixin`: security only, and one audit entry per change with before and after,
many-to-many fields included, written in the transaction that makes the change.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models, transaction

from inventory.audit.record import audit_record, changed, snapshot
from inventory.facts import scope_risk_lowered
from inventory.redaction import redact_secrets
from nhi_portal import roles

from .models import (
    AccessEvent,
    AITool,
    Attestation,
    AuditBatch,
    AuditEntry,
    Control,
    Credential,
    Finding,
    Framework,
    Scan,
    Scope,
    ScopeGrant,
    ServiceIdentity,
    Team,
    ToolIdentity,
)

User = get_user_model()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system: readable in the admin, never editable there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedChangesMixin:
    """For a ModelAdmin whose edits bypass the services: each change is audited in the transaction that makes it.

    The admin runs a change form in one transaction: `save_model` reads the stored state before the change (the
    object in hand already carries the form's values) and `save_related`, which runs after the many-to-many fields
    are saved, records one entry with what changed. Only security (superusers count) may write, whatever the
    Django permissions say. Fields in `audit_exclude` never reach the audit trail, which can never be cleaned.
    """

    audit_exclude = frozenset({"updated_at"})

    def _may_write(self, request) -> bool:
        return roles.is_security(request.user)

    def has_add_permission(self, request, *args):
        return self._may_write(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request) and super().has_delete_permission(request, obj)

    def audit_state(self, obj: models.Model) -> dict:
        """The object as the audit records it: concrete fields, and many-to-many fields as sorted ids."""
        data = {name: value for name, value in snapshot(obj).items() if name not in self.audit_exclude}
        for field in obj._meta.many_to_many:
            if field.name not in self.audit_exclude:
                data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
        return data

    def save_model(self, request, obj, form, change):
        stored = type(obj)._default_manager.select_for_update().get(pk=obj.pk) if change else None
        form._audit_before = self.audit_state(stored) if stored is not None else None
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        # The entry covers the object and its many-to-many fields; rows of an inline would change unrecorded.
        if formset.has_changed():
            raise PermissionDenied("Inline rows are not editable in the admin.")
        super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj, before, after = form.instance, getattr(form, "_audit_before", None), self.audit_state(form.instance)
        if change:
            before, after = changed(before, after)
            if not after:
                return
        action = f"{obj._meta.model_name}.admin_{'changed' if change else 'added'}"
        audit_record(actor=request.user, action=action, obj=obj, before=before, after=after, comment="via the admin")

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(actor=request.user, action=f"{obj._meta.model_name}.admin_deleted", obj=obj,
                         before=self.audit_state(obj), comment="via the admin")  # fmt: skip
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)

    def get_actions(self, request):
        # Bulk actions write with queryset.update(), past save_model (django-celery-beat's "disable selected tasks"
        # would pause the sealing job unaudited): only the delete action, which goes through delete_queryset, stays.
        actions = super().get_actions(request)
        return {name: action for name, action in actions.items() if name == "delete_selected"}


class SecretFreeForm(forms.ModelForm):
    """Refuses free text holding a secret: an admin change is copied into the audit trail, where it stays."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            model_field = next((f for f in self._meta.model._meta.fields if f.name == name), None)
            if isinstance(model_field, models.TextField) and isinstance(value, str) and redact_secrets(value)[1]:
                self.add_error(name, "This looks like it holds a secret. Remove it: secrets are never stored.")
        return cleaned


class AuditedAdmin(AuditedChangesMixin, admin.ModelAdmin):
    form = SecretFreeForm


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    """Editable and audited: membership decides whom the tools that allow a team may act for."""

    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


class ToolIdentityInline(ReadOnlyInline):
    model = ToolIdentity


@admin.register(AITool)
class AIToolAdmin(ReadOnlyAdmin):
    """Read-only: tools are edited on their pages and API, whose services check who may, redact secrets in
    prompts and connector configuration, and audit allowed users, teams and identity bindings."""

    list_display = ["name", "slug", "kind", "environment", "owner", "team", "status", "enforces_authorization"]
    list_filter = ["kind", "environment", "status", "data_classification", "enforces_authorization"]
    search_fields = ["name", "slug", "vendor"]
    list_select_related = ["owner", "team"]
    inlines = [ToolIdentityInline]


@admin.register(ServiceIdentity)
class ServiceIdentityAdmin(ReadOnlyAdmin):
    """Read-only: identities are edited on their pages and API, through the audited, permission-checked services."""

    list_display = ["name", "kind", "provider", "environment", "owner", "status", "third_party", "last_used_at"]
    list_filter = ["kind", "environment", "status", "third_party", "provider"]
    search_fields = ["name", "external_id"]
    list_select_related = ["owner"]


@admin.register(Credential)
class CredentialAdmin(ReadOnlyAdmin):
    """Read-only: credentials are fingerprints registered and revoked through the audited services (a secret is
    fingerprinted on arrival there); the admin can neither take nor show one."""

    list_display = ["identity", "kind", "last4", "storage", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["kind", "storage"]
    search_fields = ["identity__name", "fingerprint"]
    list_select_related = ["identity"]


class ScopeForm(SecretFreeForm):
    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            for name in ("risk", "sensitive"):
                if name in cleaned and scope_risk_lowered(name, getattr(self.instance, name), cleaned[name]):
                    self.add_error(name, "A scope's risk is never lowered in place: the approvals every grant of it "
                                   "needs would drop at once. Create a corrected scope instead.")  # fmt: skip
        return cleaned


@admin.register(Scope)
class ScopeAdmin(AuditedAdmin):
    form = ScopeForm
    list_display = ["name", "provider", "risk", "sensitive"]
    list_filter = ["provider", "risk", "sensitive"]
    search_fields = ["name"]


@admin.register(ScopeGrant)
class ScopeGrantAdmin(ReadOnlyAdmin):
    """Read-only: grants are issued by approved requests and revoked on the grants page, both audited."""

    list_display = ["identity", "scope", "tool", "status", "granted_at", "expires_at", "last_used_at"]
    list_filter = ["status", "scope__risk"]
    search_fields = ["identity__name", "scope__name"]
    list_select_related = ["identity", "scope", "tool"]
    raw_id_fields = ["identity", "tool"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail is append-only everywhere, the admin included."""

    list_display = ["created_at", "actor_label", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_label", "object_id"]


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "decision", "reason", "tool_ref", "identity_ref", "on_behalf_of_ref", "scope_ref"]
    list_filter = ["decision", "kind", "reason"]
    search_fields = ["tool_ref", "identity_ref", "on_behalf_of_ref", "request_id"]


@admin.register(AuditBatch)
class AuditBatchAdmin(ReadOnlyAdmin):
    list_display = ["stream", "seq", "first_id", "last_id", "entry_count", "sealed_at"]
    list_filter = ["stream"]
    exclude = ["leaves", "leaf_ids"]


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdmin):
    """Triage happens on the findings page, where it is audited; the admin only reads."""

    list_display = ["detector", "subject_type", "subject_id", "tool", "severity", "status", "last_seen_at"]
    list_filter = ["detector", "severity", "status"]
    list_select_related = ["tool"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_last_seen()

    @admin.display(ordering="last_seen_at")
    def last_seen_at(self, finding):
        return finding.last_seen_at


@admin.register(Scan)
class ScanAdmin(ReadOnlyAdmin):
    list_display = ["pk", "status", "progress", "total", "created_at", "finished_at"]
    list_filter = ["status"]


class ControlInline(admin.TabularInline):
    model = Control
    extra = 0
    fields = ["control_id", "title", "legacy_ids", "retired_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyAdmin):
    """The catalog comes from versioned files (manage.py load_frameworks), not from hand edits."""

    list_display = ["key", "name", "version", "catalog_revision", "loaded_at"]
    inlines = [ControlInline]


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["tool", "control", "attested_by", "attested_at", "expires_at"]
    list_select_related = ["tool", "control", "attested_by"]


# Users and groups: group membership is the portal role (security, manager, gateway), so Django's own admins are
# replaced by audited ones. Registered here because the project package has no admin module of its own.
for model in (User, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class AuditedUserAdmin(AuditedChangesMixin, UserAdmin):
    """Users, their groups (roles) and flags, audited. The password hash never enters the audit; a password change
    is recorded as the fact alone."""

    audit_exclude = AuditedChangesMixin.audit_exclude | {"password", "last_login"}

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            users = User._default_manager.filter(pk=unquote(id))
            stored = users.values_list("password", flat=True).first()
            response = super().user_change_password(request, id, form_url)
            user = users.first()
            if user is not None and user.password != stored:
                audit_record(actor=request.user, action="user.admin_password_changed", obj=user,
                             comment="via the admin; the password itself is never recorded")  # fmt: skip
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedChangesMixin, GroupAdmin):
    """Groups are the portal's roles; their names and permissions are audited like any other change."""


def audit_remaining_admins(site: admin.AdminSite = admin.site) -> None:
    """Every other app's admin (API tokens, periodic tasks, sign-in lockouts...) is wrapped so that it writes nothing
    unaudited and only for security: deleting a gateway token or pausing the sealing job is a governance change
    too. Called once every admin is registered (InventoryConfig.ready runs after the admin's autodiscovery)."""
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, AuditedChangesMixin | ReadOnlyAdmin):
            continue
        audited = type(f"Audited{type(model_admin).__name__}", (AuditedChangesMixin, type(model_admin)), {})
        site.unregister(model)
        site.register(model, audited)
