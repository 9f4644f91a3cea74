"""Reads for the approvals pages and API, with their joins and counts declared once."""

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from inventory.choices import GrantStatus
from inventory.models import Finding, FindingStatus, ScopeGrant, Severity

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


def _with_review_context(requests: QuerySet[AccessRequest], *, user) -> QuerySet[AccessRequest]:
    """What a reviewer weighs beside the request: their own earlier decision, the tool's open critical findings and
    the grants it already holds. The counts are correlated subqueries on the (tool, status, severity) finding index
    and the (tool, status) grant index: a constant number of queries for any number of rows."""
    mine = Decision.objects.filter(approver=user)
    critical = Finding.objects.filter(tool=OuterRef("tool_id"), status=FindingStatus.OPEN, severity=Severity.CRITICAL)
    active = ScopeGrant.objects.filter(tool=OuterRef("tool_id"), status=GrantStatus.ACTIVE)
    return requests.prefetch_related(Prefetch("decisions", queryset=mine, to_attr="my_decisions")).annotate(
        tool_open_critical=_count(critical, "tool"), tool_active_grants=_count(active, "tool")
    )


def _count(queryset: QuerySet, column: str) -> Coalesce:
    counted = queryset.order_by().values(column).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def review_queue(*, user) -> QuerySet[AccessRequest]:
    """Pending requests, oldest first, with what the reviewer weighs beside each."""
    return _with_review_context(request_list(user=user).pending(), user=user).order_by("created_at", "pk")


def review_queue_row(*, user, pk: int) -> AccessRequest:
    """One row of the queue, whatever its status now (another reviewer may have just decided it)."""
    return _with_review_context(request_list(user=user), user=user).get(pk=pk)


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
