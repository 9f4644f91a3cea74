from django.contrib import admin

from .models import AITool, AuditEntry, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity


class ToolIdentityInline(admin.TabularInline):
    model = ToolIdentity
    extra = 0
    raw_id_fields = ["identity"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(AITool)
class AIToolAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "environment", "owner", "team", "status", "enforces_authorization"]
    list_filter = ["kind", "environment", "status", "data_classification", "enforces_authorization"]
    search_fields = ["name", "slug", "vendor"]
    list_select_related = ["owner", "team"]
    raw_id_fields = ["owner"]
    inlines = [ToolIdentityInline]


@admin.register(ServiceIdentity)
class ServiceIdentityAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "provider", "environment", "owner", "status", "third_party", "last_used_at"]
    list_filter = ["kind", "environment", "status", "third_party", "provider"]
    search_fields = ["name", "external_id"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
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
class ScopeAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "risk", "sensitive"]
    list_filter = ["provider", "risk", "sensitive"]
    search_fields = ["name"]


@admin.register(ScopeGrant)
class ScopeGrantAdmin(admin.ModelAdmin):
    list_display = ["identity", "scope", "tool", "status", "granted_at", "expires_at", "last_used_at"]
    list_filter = ["status", "scope__risk"]
    search_fields = ["identity__name", "scope__name"]
    list_select_related = ["identity", "scope", "tool"]
    raw_id_fields = ["identity", "tool"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is append-only everywhere, the admin included."""

    list_display = ["created_at", "actor_label", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_label", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
