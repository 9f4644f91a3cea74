"""The security team's audit pages: who actually did what, for whom, under which grant and approval."""

import django_filters
from django.shortcuts import render

from inventory.audit.verify import verify
from inventory.models import AccessEvent, AuditEntry
from inventory.paging import paged
from nhi_portal.decorators import portal_page


class AccessEventFilter(django_filters.FilterSet):
    tool = django_filters.CharFilter(field_name="tool_ref", label="Tool (slug)")
    identity = django_filters.CharFilter(field_name="identity_ref", label="Identity")
    human = django_filters.CharFilter(field_name="on_behalf_of_ref", label="On behalf of")
    decision = django_filters.ChoiceFilter(choices=AccessEvent.Decision.choices)
    reason = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=AccessEvent.Kind.choices)
    action = django_filters.CharFilter(label="Action (MCP tool)")
    agent = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label="Since")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt", label="Until")

    class Meta:
        model = AccessEvent
        fields = ["tool", "identity", "human", "decision", "reason", "kind", "action", "agent", "since", "until"]


@portal_page(role="security")
def access_events(request):
    queryset = AccessEvent.objects.select_related("tool", "identity", "on_behalf_of", "scope", "grant__issue").order_by(
        "-id"
    )
    filterset = AccessEventFilter(request.GET, queryset=queryset)
    events = filterset.qs if filterset.is_valid() else queryset.none()
    context = {"filter": filterset, **paged(request, events, per_page=50)}
    template = "inventory/audit/audit_events.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


@portal_page(role="security")
def audit_changes(request):
    entries = AuditEntry.objects.select_related("actor").order_by("-id")
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    context = {"action": action, **paged(request, entries, per_page=50)}
    return render(request, "inventory/audit/audit_changes.html", context)


@portal_page(role="security")
def audit_verify(request):
    """htmx: recheck the hash chain now and show the verdict."""
    return render(request, "inventory/audit/_partials/verify_result.html", {"result": verify()})
