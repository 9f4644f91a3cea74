from django.contrib import admin

from .audit import audit_record, changed, snapshot
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


class ToolIdentityInline(admin.TabularInline):
    model = ToolIdentity
    extra = 0
    raw_id_fields = ["identity"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system: readable in the admin, never editable there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedAdmin(admin.ModelAdmin):
    """Admin edits bypass the services, so they are audited here, in the same transaction as the change."""

    def save_model(self, request, obj, form, change):
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        after = snapshot(obj)
        if before is not None:
            before, after = changed(before, after)
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.admin_{'changed' if change else 'added'}",
                     obj=obj, before=before, after=after, comment="via the admin")  # fmt: skip

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.admin_deleted", obj=obj,
                     before=snapshot(obj), comment="via the admin")  # fmt: skip
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(AITool)
class AIToolAdmin(AuditedAdmin):
    list_display = ["name", "slug", "kind", "environment", "owner", "team", "status", "enforces_authorization"]
    list_filter = ["kind", "environment", "status", "data_classification", "enforces_authorization"]
    search_fields = ["name", "slug", "vendor"]
    list_select_related = ["owner", "team"]
    raw_id_fields = ["owner"]
    inlines = [ToolIdentityInline]


@admin.register(ServiceIdentity)
class ServiceIdentityAdmin(AuditedAdmin):
    list_display = ["name", "kind", "provider", "environment", "owner", "status", "third_party", "last_used_at"]
    list_filter = ["kind", "environment", "status", "third_party", "provider"]
    search_fields = ["name", "external_id"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]


@admin.register(Credential)
class CredentialAdmin(AuditedAdmin):
    """Credentials are fingerprints only; the admin cannot take or show a secret."""

    list_display = ["identity", "kind", "last4", "storage", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["kind", "storage"]
    search_fields = ["identity__name", "fingerprint"]
    list_select_related = ["identity"]
    raw_id_fields = ["identity"]
    readonly_fields = ["fingerprint", "last4"]

    def has_add_permission(self, request):
        # Adding needs a secret to fingerprint; that happens on the identity page or the API.
        return False


@admin.register(Scope)
class ScopeAdmin(AuditedAdmin):
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
