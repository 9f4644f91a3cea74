"""Reads for the approvals pages and API, with their joins and counts declared once."""

from django.db.models import Count, Prefetch, Q, QuerySet

from inventory.models import ScopeGrant

from .choices import DecisionKind
from .models import AccessRequest, Decision, RequestedScope


def request_list(*, user) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.visible_to(user)
        .select_related("requester", "tool", "identity")
        .prefetch_related(Prefetch("items", queryset=RequestedScope.objects.select_related("scope")))
        .annotate(approval_count=Count("decisions", filter=Q(decisions__kind=DecisionKind.APPROVE)))
        .order_by("-created_at", "-pk")
    )


def review_queue(*, user) -> QuerySet[AccessRequest]:
    """Pending requests, oldest first, with the reviewer's own earlier decision if any."""
    mine = Decision.objects.filter(approver=user)
    return (
        request_list(user=user)
        .pending()
        .prefetch_related(Prefetch("decisions", queryset=mine, to_attr="my_decisions"))
        .order_by("created_at", "pk")
    )


def review_queue_row(*, user, pk: int) -> AccessRequest:
    """One row of the queue, whatever its status now (another reviewer may have just decided it)."""
    mine = Decision.objects.filter(approver=user)
    return (
        request_list(user=user)
        .prefetch_related(Prefetch("decisions", queryset=mine, to_attr="my_decisions"))
        .get(pk=pk)
    )


def request_detail(*, user, pk: int) -> AccessRequest:
    decisions = Decision.objects.select_related("approver").order_by("created_at", "pk")
    grants = ScopeGrant.objects.select_related("scope").order_by("pk")
    return (
        request_list(user=user)
        .select_related("renewal_of")
        .prefetch_related(Prefetch("decisions", queryset=decisions), Prefetch("issues__grant", queryset=grants))
        .get(pk=pk)
    )


def grant_list(*, user) -> QuerySet[ScopeGrant]:
    return ScopeGrant.objects.visible_to(user).select_related("identity__owner", "scope", "tool__owner", "issue")
