"""An owner's home: findings on what they own, their pending requests, grants about to lapse, credentials to rotate.

Sized for the owner with the most tools in the scale data (700 tools, 7,000 identities, 45,000 open findings, tens of
thousands of credentials due): every list reads only its first rows, walking an index in the list's own order, and
the headline counts stop at a cap ("1,000+"; the filtered list behind each has the exact number). All the counts are
one statement (`read_scalars`)."""

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce

from approvals.choices import RequestStatus
from approvals.models import AccessRequest
from approvals.policy import REMINDER_DAYS
from inventory import selectors
from inventory.detection.registry import thresholds
from inventory.models import Credential, Finding, FindingStatus, ScopeGrant, Severity

from .lists import SEVERITY_RANK, CappedCount, first_and_total, read_scalars

LIST_LENGTH = 8
CREDENTIAL_HORIZON_DAYS = 14
FINDINGS_COUNT_CAP = 1000
# Counting an owner's critical findings reads them identity by identity: 1,000 took 35 ms, 100 take 4.
CRITICAL_COUNT_CAP = 100
ROTATE_COUNT_CAP = 100
# From this many of an owner's critical findings on, they are dense enough among all open critical findings that
# walking those oldest first finds the first eight sooner than reading the owner's whole set (see my_findings).
DENSE = 100


class _Due:
    """The credential conditions of the rotate list, for one owner at one moment."""

    def __init__(self, *, now: datetime):
        self.stale_before = now - timedelta(days=thresholds().get("credential_rotation_days", 90))
        self.compromised = Q(compromised_at__isnull=False)
        self.expiring = Q(expires_at__lte=now + timedelta(days=CREDENTIAL_HORIZON_DAYS))
        self.stale = Q(rotated__lt=self.stale_before)
        self.live = Credential.objects.filter(revoked_at__isnull=True).alias(
            rotated=Coalesce("last_rotated_at", "created_at")
        )


def headline_counts(*, user, due: _Due) -> dict[str, int]:
    """Every count on the page, capped, in one statement."""
    counted = selectors.counted_by_identity(due.live, user=user)
    return read_scalars(
        user=user,
        findings=CappedCount(selectors.open_finding_ids(user=user), FINDINGS_COUNT_CAP),
        critical=CappedCount(selectors.open_finding_ids(user=user, severity=Severity.CRITICAL), CRITICAL_COUNT_CAP),
        credentials=CappedCount(
            counted.filter(due.compromised | due.expiring | due.stale).values("pk"), ROTATE_COUNT_CAP
        ),
        compromised=CappedCount(counted.filter(due.compromised).values("pk"), LIST_LENGTH),
    )


def _capped(n: int, cap: int) -> dict:
    return {"total": min(n or 0, cap), "capped": (n or 0) > cap}


def my_findings(*, user, counts: dict[str, int]) -> tuple[list[Finding], dict]:
    """Open findings on the owner's tools and identities, most severe first, then the longest open.

    Ranking all of an owner's open findings cost 0.6 s for the owner with the most tools (45,000 of them). So an owner
    with many critical findings walks all open findings in rank order (the open-by-rank index) and stops at the eighth
    of theirs, which comes early when theirs are dense; an owner with few reads their own set, which is then small,
    through the tool and identity indexes, and ranks that."""
    rows: list[Finding] = []
    if counts["critical"] >= DENSE:
        # Many: walk all open findings in this very order (the open-by-rank index) until eight are the owner's.
        walk = Finding.objects.filter(status=FindingStatus.OPEN).order_by(SEVERITY_RANK, "first_seen_at", "pk")
        first = selectors.probed_findings(walk, user=user).values("pk")[:LIST_LENGTH]
        # Joined to their tool and identity after the LIMIT: joined before it, all 2,000 were (150 ms).
        rows = list(
            selectors.with_subject_columns(Finding.objects.filter(pk__in=first))
            .select_related("tool", "identity")
            .order_by(SEVERITY_RANK, "first_seen_at", "pk")
        )
    elif counts["findings"]:
        # Few: read the owner's own through the tool and identity indexes, criticals first, and rank those.
        rows = list(_open_of(user, Severity.CRITICAL)[:LIST_LENGTH]) if counts["critical"] else []
        if len(rows) < LIST_LENGTH and counts["findings"] > len(rows):
            rest = _open_of(user, None).exclude(severity=Severity.CRITICAL)
            rows += list(rest.order_by(SEVERITY_RANK, "first_seen_at", "pk")[: LIST_LENGTH - len(rows)])
    totals = _capped(counts["findings"], FINDINGS_COUNT_CAP)
    totals["critical"] = min(counts["critical"], CRITICAL_COUNT_CAP)
    totals["critical_capped"] = counts["critical"] > CRITICAL_COUNT_CAP
    return selectors.with_subject_names(selectors.with_titles(rows)), totals


def _open_of(user, severity: str | None):
    ids = selectors.open_finding_ids(user=user, severity=severity)
    findings = selectors.with_subject_columns(Finding.objects.filter(pk__in=ids))
    return findings.select_related("tool", "identity").order_by("first_seen_at", "pk")


def my_pending_requests(*, user) -> tuple[list[AccessRequest], dict[str, int]]:
    pending = (
        AccessRequest.objects.filter(requester=user)
        .pending()
        .select_related("tool", "identity")
        .order_by("created_at", "pk")
    )
    return first_and_total(pending, LIST_LENGTH)


def my_expiring_grants(*, user, now: datetime) -> tuple[list[ScopeGrant], dict[str, int]]:
    """Active grants on what the owner sees that lapse within the renewal window, soonest first, with the approved
    request a renewal would copy and whether a renewal of it already waits."""
    renewal_waiting = AccessRequest.objects.filter(renewal_of=OuterRef("issue__request"), status=RequestStatus.PENDING)
    grants = (
        selectors.scoped_by_identity(ScopeGrant.objects.all(), user=user)
        .active(at=now)
        .filter(expires_at__lte=now + timedelta(days=REMINDER_DAYS))
        .select_related("scope", "identity", "tool", "issue__request")
        .annotate(renewal_waiting=Exists(renewal_waiting))
        .order_by("expires_at", "pk")
    )
    rows, totals = first_and_total(grants, LIST_LENGTH)
    for grant in rows:
        issue = getattr(grant, "issue", None)
        grant.renewable_request = issue.request if issue and issue.request.status == RequestStatus.APPROVED else None
    return rows, totals


def credentials_to_rotate(*, user, now: datetime, due: _Due, counts: dict[str, int]) -> tuple[list[Credential], dict]:
    """Live credentials that are compromised, expire soon, or have gone unrotated past the detector's threshold:
    compromised first, then the soonest to expire, then the longest unrotated.

    One ordered read per reason, each walking its partial index on live credentials and stopping at the list's
    length (the compromised read only when the counts saw one); one query ordering the three together sorted all of
    an owner's due credentials (tens of thousands for the owner with the most tools: 0.3-0.6 s)."""
    walked = selectors.scoped_by_identity(due.live, user=user).select_related("identity")
    reasons = (
        walked.filter(due.compromised).order_by("compromised_at", "pk") if counts["compromised"] else None,
        walked.filter(due.expiring).exclude(due.compromised).order_by("expires_at", "pk"),
        walked.filter(due.stale).exclude(due.compromised | due.expiring).order_by("rotated", "pk"),
    )
    rows: list[Credential] = []
    for reason in reasons:
        if reason is None or len(rows) >= min(LIST_LENGTH, counts["credentials"]):
            continue
        rows += list(reason[: LIST_LENGTH - len(rows)])
    for credential in rows:
        credential.rotate_reason = _rotate_reason(credential, now=now, stale_before=due.stale_before)
    return rows, _capped(counts["credentials"], ROTATE_COUNT_CAP)


def _rotate_reason(credential: Credential, *, now: datetime, stale_before: datetime) -> str:
    if credential.compromised_at:
        return "marked compromised: replace and revoke it"
    if credential.expires_at and credential.expires_at <= now:
        return "expired"
    if credential.expires_at and credential.expires_at <= now + timedelta(days=CREDENTIAL_HORIZON_DAYS):
        days = (credential.expires_at - now).days
        return f"expires in {days} day{'s' if days != 1 else ''}" if days else "expires today"
    rotated = credential.last_rotated_at or credential.created_at
    return f"not rotated for {(now - rotated).days} days"


def owner_home(*, user, now: datetime) -> dict:
    due = _Due(now=now)
    counts = headline_counts(user=user, due=due)
    findings, finding_counts = my_findings(user=user, counts=counts)
    requests, request_counts = my_pending_requests(user=user)
    grants, grant_counts = my_expiring_grants(user=user, now=now)
    credentials, credential_counts = credentials_to_rotate(user=user, now=now, due=due, counts=counts)
    return {
        "now": now,
        "findings": findings,
        "finding_counts": finding_counts,
        "requests": requests,
        "request_counts": request_counts,
        "grants": grants,
        "grant_counts": grant_counts,
        "renewal_days": REMINDER_DAYS,
        "credentials": credentials,
        "credential_counts": credential_counts,
        "credential_horizon": CREDENTIAL_HORIZON_DAYS,
    }
