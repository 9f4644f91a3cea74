"""Alerts (issue 18): a finding that opens (new or reopened) at or above `ALERT_MIN_SEVERITY` is told at once to the
owner of its tool (of its identity, without a tool) and to security, by e-mail, and to every `ALERT_WEBHOOK_URLS`
endpoint as Slack-compatible JSON (contract: ../shared/API.md, "Alerts and containment").

One alert per finding per opening: `Finding.alert_queued_for` holds the opening (`opened_at`) an alert was queued for,
set in the same transaction that creates the deliveries. More than `ALERT_DIGEST_AFTER` findings opening in one run
(a first scan, a large import) become one digest per recipient and per webhook. Each delivery is an AlertDelivery row
sent by a Celery task (inventory.tasks.deliver_alert, in `inventory.detection.delivery`) with retries and backoff;
security sees them all, failures included, on the deliveries page and at GET /api/v1/alerts/deliveries/.
"""

import hashlib
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F
from django.db.models.functions import Coalesce
from django.urls import reverse

from inventory.models import AlertDelivery, Finding, FindingStatus, Severity
from nhi_portal.roles import SECURITY

from . import registry

RANKS = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
DIGEST_EXAMPLES = 20


def severities_alerted() -> list[str]:
    floor = RANKS.get(settings.ALERT_MIN_SEVERITY, RANKS[Severity.HIGH])
    return [level for level, rank in RANKS.items() if rank >= floor]


def finding_url(finding_id: int) -> str:
    """The finding's page: signing in first, then the page (with its contain button)."""
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("inventory:finding_detail", args=[finding_id])


def _title(key: str) -> str:
    try:
        return registry.get(key).title
    except KeyError:
        return key


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def finding_payload(finding: Finding) -> dict:
    """The webhook body for one finding, exactly the API.md fields. Never a secret: findings hold none."""
    tool = finding.tool.slug if finding.tool_id and finding.tool else None
    identity = finding.identity.name if finding.identity_id and finding.identity else None
    about = ", ".join(part for part in (tool and f"tool {tool}", identity and f"identity {identity}") if part)
    summary = f"{_title(finding.detector)} ({finding.subject_type} {finding.subject_id}"
    summary += f"; {about})" if about else ")"
    url = finding_url(finding.pk)
    return {
        "text": f"[{finding.severity.upper()}] {summary}. Contain or triage: {url}",
        "finding": finding.pk,
        "detector": finding.detector,
        "severity": finding.severity,
        "status": finding.status,
        "tool": tool,
        "identity": identity,
        "summary": summary,
        "url": url,
        "observed_at": _iso(finding.observed_at),
        "opened_at": _iso(finding.opened_at),
    }


def webhook_origin(url: str) -> str:
    """What may be shown of a webhook URL: its scheme and host. The path often is the secret (Slack's are)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def webhook_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _security_emails() -> list[str]:
    users = get_user_model().objects.filter(groups__name=SECURITY, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _owner_email(finding: Finding) -> str:
    owner = finding.tool.owner if finding.tool_id and finding.tool else None
    if owner is None and finding.identity_id and finding.identity:
        owner = finding.identity.owner
    return owner.email if owner is not None and owner.is_active else ""


def _mail(subject: str, lines: list[str]) -> dict:
    return {"subject": f"[NHI Portal] {subject}", "body": "\n".join(lines) + "\n"}


def _single(finding: Finding, opened_at: datetime) -> list[AlertDelivery]:
    payload = finding_payload(finding)
    mail = _mail(payload["summary"], [payload["text"], "", f"Observed: {payload['observed_at']}",
                                      f"Opened: {payload['opened_at']}", f"Open it: {payload['url']}"])  # fmt: skip
    recipients = set(_security_emails()) | {_owner_email(finding)}
    common = {"findings": [finding.pk], "opened_at": opened_at}
    rows = [AlertDelivery(channel="email", target=address, payload=mail, **common) for address in sorted(recipients)
            if address]  # fmt: skip
    rows += [
        AlertDelivery(channel="webhook", target=webhook_origin(url), target_digest=webhook_digest(url),
                      payload=payload, **common)
        for url in settings.ALERT_WEBHOOK_URLS
    ]  # fmt: skip
    return rows


def _digest(due, count: int, opened_at: datetime) -> list[AlertDelivery]:
    """One message per recipient and webhook for a burst: counts by severity and detector, the first few findings,
    and a link to the findings page. Aggregates only: a first scan's hundreds of thousands are never loaded."""
    by_kind = list(due.order_by().values("severity", "detector").annotate(n=Count("pk")).order_by("-n")[:20])
    examples = list(due.select_related("tool__owner", "identity__owner").order_by("pk")[:DIGEST_EXAMPLES])
    findings_page = settings.PORTAL_BASE_URL.rstrip("/") + reverse("inventory:finding_list")
    text = f"{count} findings opened at or above {settings.ALERT_MIN_SEVERITY}: " + ", ".join(
        f"{row['n']} {row['severity']} {row['detector']}" for row in by_kind
    )
    payload = {
        "text": f"{text}. Review: {findings_page}",
        "digest": True,
        "count": count,
        "summary": text,
        "url": findings_page,
        "opened_at": _iso(opened_at),
        "findings": [finding_payload(f) for f in examples],
    }
    ids = [f.pk for f in examples]
    common = {"digest": True, "findings": ids, "opened_at": opened_at}
    lines = [text, "", *(f"- {p['text']}" for p in payload["findings"]), "", f"All findings: {findings_page}"]
    rows = [AlertDelivery(channel="email", target=a, payload=_mail(f"{count} new findings", lines), **common)
            for a in _security_emails()]  # fmt: skip
    # Owners (of the tool, else of the identity): their own count, and the findings page, which shows them theirs.
    owner_email = Coalesce("tool__owner__email", "identity__owner__email")
    owners = due.annotate(owner_email=owner_email).exclude(owner_email="").filter(owner_email__isnull=False)
    for row in owners.values("owner_email").annotate(n=Count("pk")).order_by("owner_email"):
        lines = [f"{row['n']} findings opened on tools or identities you own.", f"Review them: {findings_page}"]
        mail = _mail(f"{row['n']} new findings on what you own", lines)
        rows.append(AlertDelivery(channel="email", target=row["owner_email"], payload=mail, **common))
    rows += [
        AlertDelivery(channel="webhook", target=webhook_origin(url), target_digest=webhook_digest(url),
                      payload=payload, **common)
        for url in settings.ALERT_WEBHOOK_URLS
    ]  # fmt: skip
    return rows


def alerts_queue(*, opened_at: datetime) -> list[int]:
    """Queue the alerts for the findings that opened at `opened_at` (one run's clock) and were not alerted for that
    opening yet. Returns the deliveries' ids; each is sent by its own task once this commits."""
    with transaction.atomic():
        # Each run has its own clock, so no two runs report the same opening; a finding that reopens later has a new
        # `opened_at` and is alerted again, once.
        due = Finding.objects.filter(
            opened_at=opened_at, status=FindingStatus.OPEN, severity__in=severities_alerted()
        ).exclude(alert_queued_for=F("opened_at"))
        count = due.count()
        if not count:
            return []
        if count > settings.ALERT_DIGEST_AFTER:
            rows = _digest(due, count, opened_at)
        else:
            findings = due.select_related("tool__owner", "identity__owner").order_by("pk")
            rows = [row for finding in findings for row in _single(finding, opened_at)]
        due.update(alert_queued_for=F("opened_at"))
        created = AlertDelivery.objects.bulk_create(rows)
        delivery_ids = [row.pk for row in created]
        transaction.on_commit(lambda: _send_all(delivery_ids))
    return delivery_ids


def _send_all(delivery_ids: list[int]) -> None:
    from inventory import tasks  # the wiring; imported here because it imports every capability

    for pk in delivery_ids:
        tasks.deliver_alert.delay(pk)
