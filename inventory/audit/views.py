"""The security team's audit pages: who actually did what, for whom, under which grant and approval.

Both lists page by keyset (inventory/audit/keyset.py) and every filter of the decisions list is served by an index on
(column, id) or by the primary key (see AccessEvent's indexes), so they cost the same at ten million rows as at ten.
The verify button queues a background run and shows the latest verdict; it never re-hashes in the request."""

import django_filters
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from inventory import selectors
from inventory.audit import keyset, runs
from inventory.audit.api import verification_queue_for
from inventory.models import AccessEvent, AuditEntry
from nhi_portal.decorators import portal_page

PER_PAGE = 50


class AccessEventFilter(django_filters.FilterSet):
    tool = django_filters.CharFilter(field_name="tool_ref", label="Tool (slug)")
    identity = django_filters.CharFilter(field_name="identity_ref", label="Identity")
    human = django_filters.CharFilter(field_name="on_behalf_of_ref", label="On behalf of")
    decision = django_filters.ChoiceFilter(choices=AccessEvent.Decision.choices)
    reason = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=AccessEvent.Kind.choices)
    action = django_filters.CharFilter(label="Action (MCP tool)")
    agent = django_filters.CharFilter()
    # The time the portal recorded the event: the client's occurred_at is what a gateway says, and only the server's
    # time rises with the id, which is what lets a range be read through the keyset indexes (keyset.recorded_range).
    since = django_filters.IsoDateTimeFilter(method="in_range", label="Recorded since")
    until = django_filters.IsoDateTimeFilter(method="in_range", label="Recorded until")

    class Meta:
        model = AccessEvent
        fields = ["tool", "identity", "human", "decision", "reason", "kind", "action", "agent", "since", "until"]

    def in_range(self, queryset, name, value):
        bounds = {"since": None, "until": None, name: value}
        return keyset.recorded_range(queryset, "recorded_at", bounds["since"], bounds["until"])


@portal_page(role="security")
def access_events(request):
    queryset = AccessEvent.objects.select_related("tool", "identity", "on_behalf_of", "scope", "grant__issue")
    filterset = AccessEventFilter(request.GET, queryset=queryset)
    valid = filterset.is_valid()
    events = filterset.qs if valid else queryset.none()
    filtered = not valid or any(value not in (None, "") for value in filterset.form.cleaned_data.values())
    page = keyset.keyset_page(request, events, per_page=PER_PAGE, filtered=filtered)
    context = {"filter": filterset, "page": page, "query": _query(request)}
    template = "inventory/audit/audit_events.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


@portal_page(role="security")
def audit_changes(request):
    entries = AuditEntry.objects.select_related("actor")
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    page = keyset.keyset_page(request, entries, per_page=PER_PAGE, filtered=bool(action))
    page.rows = selectors.with_audit_labels(page.rows)  # issue 15: object names, links and "field: old → new"
    return render(
        request, "inventory/audit/audit_changes.html", {"action": action, "page": page, "query": _query(request)}
    )


@require_http_methods(["GET", "POST"])
@portal_page(role="security")
def audit_verify(request):
    """htmx: the latest verdict (GET, polled while a run is going), or queue a full run (POST) and show it going."""
    if request.method == "POST":
        verification_queue_for(request.user, "full")
    return render(request, "inventory/audit/_partials/verify_result.html", {"status": runs.verification_status()})


def _query(request) -> str:
    """The URL's other parameters (filters), kept by the pager's links."""
    query = request.GET.copy()
    for name in ("before", "after", "page"):
        query.pop(name, None)
    return query.urlencode()
