"""Sending one alert delivery (inventory.detection.alerts): one attempt per call, its outcome recorded on the row.

The Celery task (inventory.tasks.deliver_alert) calls `delivery_attempt` and retries with exponential backoff while
it answers RETRY; after `ALERT_MAX_ATTEMPTS` the delivery is FAILED and stays visible to security with its last
error. A webhook body is signed when `ALERT_WEBHOOK_SECRET` is set: `X-NHI-Signature: sha256=<hex HMAC-SHA256 of the
exact bytes sent>`. Errors are recorded without the webhook's URL (its path is often a secret).
"""

import hashlib
import hmac
import json

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from inventory.models import AlertDelivery, Finding

from .alerts import webhook_digest, webhook_origin

DELIVERED, RETRY, FAILED, SKIPPED = "delivered", "retry", "failed", "skipped"
SIGNATURE_HEADER = "X-NHI-Signature"


class DeliveryError(Exception):
    """The receiver did not take the alert."""


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_seconds(retries: int) -> int:
    """Seconds before retry number `retries + 1`: the base, doubling, at most an hour."""
    return min(settings.ALERT_RETRY_BACKOFF_SECONDS * 2**retries, 3600)


def _webhook_url(delivery: AlertDelivery) -> str:
    for url in settings.ALERT_WEBHOOK_URLS:
        if webhook_digest(url) == delivery.target_digest:
            return url
    raise DeliveryError("This webhook is no longer configured (ALERT_WEBHOOK_URLS).")


def _post(delivery: AlertDelivery) -> None:
    url = _webhook_url(delivery)
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "nhi-portal-alerts"}
    if settings.ALERT_WEBHOOK_SECRET:
        headers[SIGNATURE_HEADER] = sign(body, settings.ALERT_WEBHOOK_SECRET)
    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=settings.ALERT_WEBHOOK_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as error:
        # The exception's text names the URL; only its origin may be recorded.
        raise DeliveryError(f"{type(error).__name__} reaching {webhook_origin(url)}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code} from {webhook_origin(url)}")


def _mail(delivery: AlertDelivery) -> None:
    payload = delivery.payload
    send_mail(payload["subject"], payload["body"], settings.DEFAULT_FROM_EMAIL, [delivery.target])


def delivery_attempt(delivery_id: int) -> str:
    """One attempt: DELIVERED, RETRY (try again later), FAILED (out of attempts), SKIPPED (gone or done already)."""
    delivery = AlertDelivery.objects.filter(pk=delivery_id, status=AlertDelivery.Status.PENDING).first()
    if delivery is None:
        return SKIPPED
    now = timezone.now()
    try:
        _post(delivery) if delivery.channel == AlertDelivery.Channel.WEBHOOK else _mail(delivery)
    except Exception as error:  # any failure of the receiver or the mail server is this delivery's outcome
        attempts = delivery.attempts + 1
        failed = attempts >= settings.ALERT_MAX_ATTEMPTS
        message = str(error) if isinstance(error, DeliveryError) else type(error).__name__
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            attempts=attempts,
            last_attempt_at=now,
            last_error=message[:500],
            status=AlertDelivery.Status.FAILED if failed else AlertDelivery.Status.PENDING,
        )
        return FAILED if failed else RETRY
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        attempts=delivery.attempts + 1, last_attempt_at=now, delivered_at=now, status=AlertDelivery.Status.DELIVERED
    )
    # The response clock: the first delivery about each opening it reports.
    reported = Finding.objects.filter(opened_at=delivery.opened_at, alert_queued_for=delivery.opened_at)
    if not delivery.digest:
        reported = reported.filter(pk__in=delivery.findings)
    reported.filter(alerted_at__isnull=True).update(alerted_at=now)
    return DELIVERED
