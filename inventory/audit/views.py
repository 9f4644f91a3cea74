"""The security team's audit pages: who actually did what, for whom, under which grant and approval."""

import django_filters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

from inventory.audit.sealing import verify
from inventory.models import AccessEvent, AuditEntry
from nhi_portal import roles
from nhi_portal.decorators import portal_page


class AccessEventFilter(django_filters.FilterSet):
    tool = django_filters.CharFilter(field_name="tool_ref", label="Tool (slug)")
    identity = django_filters.CharFilter(field_name="identity_ref", label="Identity")
    human = django_filters.CharFilter(field_name="on_behalf_of_ref", label="On behalf of")
    decision = django_filters.ChoiceFilter(choices=AccessEvent.Decision.choices)
    reason = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label="Since")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt", label="Until")

    class Meta:
        model = AccessEvent
        fields = ["tool", "identity", "human", "decision", "reason", "since", "until"]


def _security_only(request) -> None:
    if not roles.is_security(request.user):
        raise PermissionDenied


@portal_page
def access_events(request):
    _security_only(request)
    queryset = AccessEvent.objects.select_related("tool", "identity", "on_behalf_of", "scope", "grant__issue").order_by(
        "-id"
    )
    filterset = AccessEventFilter(request.GET, queryset=queryset)
    events = filterset.qs if filterset.is_valid() else queryset.none()
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filter": filterset, "page": page, "query": query.urlencode()}
    template = "inventory/audit/audit_events.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


@portal_page
def audit_changes(request):
    _security_only(request)
    entries = AuditEntry.objects.select_related("actor").order_by("-id")
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "inventory/audit/audit_changes.html", {"page": page, "action": action})


@portal_page
def audit_verify(request):
    """htmx: recheck the hash chain now and show the verdict."""
    _security_only(request)
    return render(request, "inventory/audit/_partials/verify_result.html", {"result": verify()})
