"""The approvals admin: the workflow's records are read-only here; what stays editable is audited.

Requests, decisions and grant issues change only through the workflow, where separation of duties is enforced.
The policy switches go through their service; gateway tool limits are audited by `AuditedAdmin`.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from inventory.admin import AuditedAdmin, ReadOnlyAdmin, ReadOnlyInline
from nhi_portal import roles
from nhi_portal.exceptions import PortalError

from . import services
from .models import AccessRequest, Decision, GatewayToolLimit, GrantIssue, PolicySettings, RequestedScope


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
    """Every write goes through `policy_settings_update`, which checks, saves and audits like the policy page."""

    list_display = ["auto_approve_low_risk", "auto_approve_max_days", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    def has_add_permission(self, request):
        return (
            roles.is_security(request.user)
            and super().has_add_permission(request)
            and not PolicySettings.objects.exists()
        )

    def has_change_permission(self, request, obj=None):
        return roles.is_security(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Deleting the row would switch auto-approval off with no entry; the service has no such path.
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The service is the one judge of the values; its refusal is shown, and the admin's transaction rolls back.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PortalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        saved = services.policy_settings_update(
            actor=request.user,
            auto_approve_low_risk=obj.auto_approve_low_risk,
            auto_approve_max_days=obj.auto_approve_max_days,
        )
        # The admin goes on to log and redirect to the object it holds, so that object becomes the saved row.
        obj.pk, obj.updated_by, obj.updated_at = saved.pk, saved.updated_by, saved.updated_at
        obj._state.adding = False


@admin.register(GatewayToolLimit)
class GatewayToolLimitAdmin(AuditedAdmin):
    """Which tools a gateway token may ask about, audited; tokens themselves are issued with manage.py issue_token."""

    list_display = ["token", "created_at"]
    filter_horizontal = ["tools"]
    readonly_fields = ["token"]

    def has_add_permission(self, request):
        return False
