"""The security team's home: what to triage, review, fix and rotate first, and whether the jobs keep up."""

from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from approvals.models import AccessRequest
from approvals.policy import PENDING_EXPIRY_DAYS
from inventory import selectors
from inventory.detection import registry
from inventory.detection.measures import response_measures
from inventory.models import AITool, Credential, DetectorRun, Finding, FindingStatus, Severity

from .charts import findings_per_week
from .jobs import jobs_status
from .lists import SEVERITY_RANK, first_and_total

URGENT = (Severity.CRITICAL, Severity.HIGH)
CREDENTIAL_HORIZON_DAYS = 14
LIST_LENGTH = 8


def _open_of(severity: str):
    """Open findings of one severity, selected by their rank so the open-by-rank index (rank, first_seen_at, id,
    including tool and identity) serves it as one range: a filter on the severity column scanned the whole (tool,
    status, severity) index instead (60 ms)."""
    ranks = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
    return Finding.objects.filter(status=FindingStatus.OPEN).alias(rank=SEVERITY_RANK).filter(rank=ranks[severity])


def unresolved_counts() -> dict[str, Subquery]:
    """Unresolved findings per urgent severity, as scalar subqueries over each detector's last run (open, acknowledged
    or suppressed; the findings page reads the same numbers): counting 600,000 high findings on every visit to the
    home page cost seconds. Read in the jobs statement, so they add no query."""
    counts = {}
    for severity in URGENT:
        keys = [d.key for d in registry.all_detectors() if d.severity == severity]
        runs = DetectorRun.objects.filter(detector__in=keys).order_by().values(one=Value(1))
        counts[severity] = Coalesce(Subquery(runs.annotate(n=Sum("unresolved")).values("n")[:1]), 0)
    return counts


def urgent_findings() -> list[Finding]:
    """Open critical findings, then high ones, oldest first: the longest-exposed risk on top. Walks the open-by-rank
    index in that very order and stops at the eighth (a sort of the 600,000 open high findings otherwise)."""
    first = (
        Finding.objects.filter(status=FindingStatus.OPEN, severity__in=URGENT)
        .order_by(SEVERITY_RANK, "first_seen_at", "pk")
        .values("pk")[:LIST_LENGTH]
    )
    rows = selectors.with_subject_columns(Finding.objects.filter(pk__in=first)).select_related("tool", "identity")
    return selectors.with_subject_names(selectors.with_titles(rows.order_by(SEVERITY_RANK, "first_seen_at", "pk")))


def pending_reviews(*, user, now: datetime) -> tuple[list[AccessRequest], dict[str, int]]:
    """Requests waiting for a security decision, oldest first, with how close each is to expiring unanswered."""
    queue = (
        AccessRequest.objects.visible_to(user)
        .pending()
        .select_related("requester", "tool", "identity")
        .order_by("created_at", "pk")
    )
    rows, totals = first_and_total(queue, LIST_LENGTH, own=Q(requester=user))
    for row in rows:
        row.days_left = PENDING_EXPIRY_DAYS - (now - row.created_at).days
    return rows, totals


def tools_most_at_risk(limit: int = 5) -> list[AITool]:
    """Tools ranked by their open critical findings. The ranking groups the few thousand critical findings by tool
    from the index alone; only the top few tools are then read, each with its count from the (tool, status,
    severity) index. Joining every critical finding to its tool's name before grouping took 40-80 ms."""
    top = (
        _open_of(Severity.CRITICAL)
        .filter(tool__isnull=False)
        .order_by()
        .values("tool_id")
        .annotate(critical=Count("pk"))
        .order_by("-critical", "tool_id")
        .values("tool_id")[:limit]
    )
    critical = _open_of(Severity.CRITICAL).filter(tool=OuterRef("pk")).order_by().values("tool")
    return list(
        AITool.objects.filter(pk__in=top)
        .annotate(critical=Subquery(critical.annotate(n=Count("*")).values("n")))
        .order_by("-critical", "name")
        .only("pk", "name", "slug")
    )


def _expiring(now: datetime):
    return Credential.objects.filter(
        revoked_at__isnull=True, expires_at__gt=now, expires_at__lte=now + timedelta(days=CREDENTIAL_HORIZON_DAYS)
    )


def expiring_credentials(*, now: datetime) -> list[Credential]:
    """The soonest to expire, walking the partial index of live credentials' expiry. Counted apart (in the jobs
    statement): a window count here joined all the thousands expiring to their identities first (25-40 ms)."""
    return list(_expiring(now).select_related("identity").order_by("expires_at", "pk")[:LIST_LENGTH])


def expiring_count(*, now: datetime) -> Subquery:
    counted = _expiring(now).order_by().values(one=Value(1)).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted[:1]), 0)


def security_home(*, user, now: datetime) -> dict:
    jobs = jobs_status(user=user, now=now, also={**unresolved_counts(), "credentials": expiring_count(now=now)})
    reviews, review_counts = pending_reviews(user=user, now=now)
    credentials = expiring_credentials(now=now)
    return {
        "now": now,
        "findings": urgent_findings(),
        "finding_counts": {severity: jobs.also[severity] for severity in URGENT},
        "reviews": reviews,
        "review_counts": review_counts,
        "pending_expiry_days": PENDING_EXPIRY_DAYS,
        "tools_at_risk": tools_most_at_risk(),
        "credentials": credentials,
        "credential_counts": {"total": jobs.also["credentials"]},
        "credential_horizon": CREDENTIAL_HORIZON_DAYS,
        "jobs": jobs,
        "findings_chart": findings_per_week(now=now),
        # Time to detect, alert and contain (issue 18), over the findings a measure applies to (a partial index).
        "measures": response_measures(now=now),
    }
