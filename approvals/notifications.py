"""Mail about requests and grants. Sent after commit; a failure to send is logged and never undoes a decision."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string

from nhi_portal.roles import SECURITY

logger = logging.getLogger(__name__)


def _send(*, subject: str, template: str, context: dict, recipients: Iterable[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return
    body = render_to_string(template, {**context, "base_url": getattr(settings, "PORTAL_BASE_URL", "")})
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    except Exception:
        # The decision is already committed; mail is best effort and must not raise into the caller.
        logger.exception("could not send %r to %d recipient(s)", subject, len(recipients))


def security_emails() -> list[str]:
    users = get_user_model().objects.filter(groups__name=SECURITY, is_active=True).exclude(email="")
    return list(users.values_list("email", flat=True))


def request_filed(request) -> None:
    _send(
        subject=f"[NHI Portal] Scope request #{request.pk} for {request.tool.name} needs review",
        template="approvals/email/request_filed.txt",
        context={"request": request},
        recipients=[e for e in security_emails() if e != request.requester.email],
    )


def request_decided(request, decision) -> None:
    _send(
        subject=f"[NHI Portal] Scope request #{request.pk}: {decision.get_kind_display().lower()}",
        template="approvals/email/request_decided.txt",
        context={"request": request, "decision": decision},
        recipients=[request.requester.email],
    )


def grants_expiring(owner, grants) -> None:
    _send(
        subject=f"[NHI Portal] {len(grants)} grant(s) expire within a week",
        template="approvals/email/grants_expiring.txt",
        context={"owner": owner, "grants": grants},
        recipients=[owner.email],
    )
