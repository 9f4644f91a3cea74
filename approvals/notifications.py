"""Mail about requests and grants. Each function is the body of a Celery task (approvals.tasks): it takes ids and the
state the mail must report, loads the rest, renders and sends.

A failed send raises, so that the task retries it; the decision it reports committed before the task was queued and
never depends on the mail.
"""

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from inventory.choices import GrantStatus
from inventory.models import ScopeGrant
from nhi_portal.roles import SECURITY

from . import policy
from .choices import RequestStatus
from .models import AccessRequest, Decision


def _send(*, subject: str, template: str, context: dict, recipients: Iterable[str]) -> int:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return 0
    body = render_to_string(template, {**context, "base_url": getattr(settings, "PORTAL_BASE_URL", "")})
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)


def security_emails() -> list[str]:
    users = get_user_model().objects.filter(groups__name=SECURITY, is_active=True).exclude(email="")
    return list(users.values_list("email", flat=True))


def request_filed(*, request_id: int) -> int:
    """Ask security to review. What a request asks for never changes after filing, and the number of approvals only
    ever goes up, so the request as it is when the mail goes out is what the reviewers need."""
    request = (
        AccessRequest.objects.select_related("requester", "tool", "identity")
        .prefetch_related("items__scope")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        return 0
    return _send(
        subject=f"[NHI Portal] Scope request #{request.pk} for {request.tool.name} needs review",
        template="approvals/email/request_filed.txt",
        context={"request": request},
        recipients=[e for e in security_emails() if e != request.requester.email],
    )


def request_decided(*, decision_id: int, status: str, approvals: int, required_approvals: int) -> int:
    """Tell the requester about one decision, with the request's state as that decision left it: by the time the
    mail goes out a second approver may already have moved the request on, and each mail reports its own step."""
    decision = (
        Decision.objects.select_related("approver", "request__requester", "request__tool")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None:
        return 0
    request = decision.request
    return _send(
        subject=f"[NHI Portal] Scope request #{request.pk}: {decision.get_kind_display().lower()}",
        template="approvals/email/request_decided.txt",
        context={
            "request": request,
            "decision": decision,
            "status": status,
            "status_display": RequestStatus(status).label,
            "approvals": approvals,
            "required_approvals": required_approvals,
        },
        recipients=[request.requester.email],
    )


def grants_expiring(*, owner_id: int, grant_ids: list[int]) -> int:
    """Remind an owner of their grants that expire soon, then mark exactly those reminded. Returns how many.

    The mark comes after the send, in the same transaction: a failed send raises, rolls back and leaves the grants
    unmarked, so the task's retry (or the next hourly job) reminds the owner again. The grants stay locked while the
    mail is sent (at most EMAIL_TIMEOUT per SMTP step), so a second copy of this task, queued by the hourly job while
    this one was still waiting or retrying, waits here and then finds them marked: one mail, not two. FOR NO KEY
    UPDATE, because the access events that reference a grant take a key-share lock on it, and the authorization
    decisions that write them must not wait for a mail server. On SQLite (development) there are no row locks.
    """
    now = timezone.now()
    owned = Q(tool__isnull=False, tool__owner_id=owner_id) | Q(tool__isnull=True, identity__owner_id=owner_id)
    with transaction.atomic():
        grants = list(
            ScopeGrant.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk__in=grant_ids, status=GrantStatus.ACTIVE, expiry_reminded_at__isnull=True)
            .filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=policy.REMINDER_DAYS))
            .filter(owned)
            .select_related("scope", "identity", "tool")
            .order_by("pk")
        )
        if not grants:
            return 0
        owner = get_user_model().objects.get(pk=owner_id)
        # An owner without an address is marked too: retrying cannot give them one.
        _send(
            subject=f"[NHI Portal] {len(grants)} grant(s) expire within a week",
            template="approvals/email/grants_expiring.txt",
            context={"owner": owner, "grants": grants},
            recipients=[owner.email],
        )
        ScopeGrant.objects.filter(pk__in=[g.pk for g in grants], expiry_reminded_at__isnull=True).update(
            expiry_reminded_at=now
        )
    return len(grants)
