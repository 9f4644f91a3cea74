from django.contrib import admin

from inventory.admin import ReadOnlyAdmin

from . import services
from .models import AccessRequest, Decision, GatewayToolLimit, GrantIssue, PolicySettings, RequestedScope


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RequestedScopeInline(ReadOnlyInline):
    model = RequestedScope


class DecisionInline(ReadOnlyInline):
    model = Decision


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    """Read-only: decisions go through the workflow (pages or API), where separation of duties is enforced."""

    list_display = ["pk", "tool", "identity", "requester", "status", "required_approvals", "created_at"]
    list_filter = ["status"]
    search_fields = ["tool__slug", "identity__name", "requester__username"]
    list_select_related = ["tool", "identity", "requester"]
    inlines = [RequestedScopeInline, DecisionInline]


@admin.register(GrantIssue)
class GrantIssueAdmin(ReadOnlyAdmin):
    list_display = ["grant", "request", "created_at"]
    raw_id_fields = ["grant", "request"]


@admin.register(PolicySettings)
class PolicySettingsAdmin(admin.ModelAdmin):
    list_display = ["auto_approve_low_risk", "auto_approve_max_days", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    def has_add_permission(self, request):
        return not PolicySettings.objects.exists()

    def save_model(self, request, obj, form, change):
        # Through the service, so the change is checked and audited like the policy page's.
        services.policy_settings_update(
            actor=request.user,
            auto_approve_low_risk=obj.auto_approve_low_risk,
            auto_approve_max_days=obj.auto_approve_max_days,
        )


@admin.register(GatewayToolLimit)
class GatewayToolLimitAdmin(admin.ModelAdmin):
    """Which tools a gateway token may ask about; tokens themselves are issued with manage.py issue_token."""

    list_display = ["token", "created_at"]
    filter_horizontal = ["tools"]
    readonly_fields = ["token"]

    def has_add_permission(self, request):
        return False
