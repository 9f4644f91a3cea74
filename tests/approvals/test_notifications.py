"""Mail leaves the request thread: Celery tasks queued after commit, taking ids and the state to report, retried on
mail errors; expiry reminders are marked sent only once they were sent, and never sent twice."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import get_connection
from django.db import close_old_connections, connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from approvals import notifications, services, tasks
from approvals.choices import RequestStatus
from inventory.models import ScopeGrant
from nhi_portal.celery import app
from tests.factories import GrantFactory, IdentityFactory, ScopeFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """What was queued, with its arguments as they would cross the broker (JSON), and nothing run."""
    calls: list[tuple[str, list, dict]] = []
    for task in (tasks.notify_request_filed, tasks.notify_request_decided, tasks.notify_grants_expiring):

        def delay(*args, _name=task.name, **kwargs):
            calls.append((_name.rsplit(".", 1)[-1], *json.loads(json.dumps([list(args), kwargs]))))

        monkeypatch.setattr(task, "delay", delay)
    return calls


class BrokenMailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP is down")


class FlakyMailBackend:
    """Refuses the first attempt, then delivers to the test outbox."""

    attempts = 0

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        type(self).attempts += 1
        if type(self).attempts == 1:
            raise TimeoutError("SMTP timed out")
        return get_connection("django.core.mail.backends.locmem.EmailBackend").send_messages(messages)


# Requests filed and decided


def test_filing_queues_the_mail_after_commit_only(file_request, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request = file_request("read")
    assert queued == [] and len(callbacks) == 1
    callbacks[0]()
    assert queued == [("notify_request_filed", [request.pk], {})]
    assert mail.outbox == []


def test_the_filed_task_mails_security(file_request, security, celery_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = file_request("read")
    (message,) = mail.outbox
    assert message.to == [security.email]
    assert f"#{request.pk}" in message.subject and "Helpdesk" in message.body and "kb:read" in message.body


def test_each_decision_mail_says_what_that_decision_left(
    file_request, security, security2, celery_eager, django_capture_on_commit_callbacks
):
    request = file_request("write")  # two approvers
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.request_decide(actor=security, request_id=request.pk, kind="approve", comment="fine by me")
        services.request_decide(actor=security2, request_id=request.pk, kind="approve")
    # Both mails go out only now, after the second approval: each still reports its own step.
    for callback in callbacks:
        callback()
    first, second = (m for m in mail.outbox if m.to == [request.requester.email])
    assert "is now pending" in first.body and "1 of 2 approvals" in first.body and "fine by me" in first.body
    assert "is now approved" in second.body and "Grants issued for 14 days" in second.body
    assert second.subject.endswith(": approved")


def test_decision_task_takes_ids_and_the_state_at_decision_time(
    file_request, security, queued, django_capture_on_commit_callbacks
):
    request = file_request("write")
    with django_capture_on_commit_callbacks(execute=True):
        decided = services.request_decide(actor=security, request_id=request.pk, kind="approve")
    decision_id = request.decisions.get().pk
    assert decided.status == RequestStatus.PENDING
    assert queued == [
        (
            "notify_request_decided",
            [decision_id],
            {"status": "pending", "approvals": 1, "required_approvals": 2},
        )
    ]


def test_auto_approval_mails_the_policy_decision(
    file_request, auto_approve_on, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = file_request("read", duration_days=7)
    assert request.status == RequestStatus.APPROVED
    # The grant issued may also open a finding its owner is alerted about (issue 18): only the decision mail here.
    (message,) = [m for m in mail.outbox if "Scope request #" in m.subject]
    assert message.to == [request.requester.email] and "approval policy" in message.body


def test_a_failed_send_raises_so_the_task_retries(file_request, security, settings):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    request = file_request("read")
    with pytest.raises(ConnectionRefusedError):
        notifications.request_filed(request_id=request.pk)


def test_the_mail_task_retries_until_sent(file_request, security, settings, celery_eager):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyMailBackend"
    FlakyMailBackend.attempts = 0
    request = file_request("read")
    result = tasks.notify_request_filed.apply(args=[request.pk])
    assert result.successful() and FlakyMailBackend.attempts == 2
    assert len(mail.outbox) == 1


def test_mail_down_never_touches_the_decision(
    file_request, security, settings, celery_eager, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    request = file_request("read")
    with django_capture_on_commit_callbacks(execute=True):
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert ScopeGrant.objects.filter(status="active").count() == 1


def test_broker_down_never_fails_a_committed_decision(
    file_request, security, monkeypatch, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(tasks.notify_request_decided, "delay", down)
    request = file_request("read")
    with django_capture_on_commit_callbacks(execute=True):
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


def test_mail_tasks_retry_with_backoff_and_time_out(settings):
    for task in (tasks.notify_request_filed, tasks.notify_request_decided, tasks.notify_grants_expiring):
        assert issubclass(ConnectionRefusedError, task.autoretry_for) and issubclass(TimeoutError, task.autoretry_for)
        assert task.retry_backoff and task.retry_jitter and task.max_retries
        assert task.soft_time_limit < task.time_limit
    assert settings.EMAIL_TIMEOUT == 10
    assert get_connection("django.core.mail.backends.smtp.EmailBackend").timeout == 10


# Expiry reminders


@pytest.fixture
def expiring(owner):
    """Three of the owner's grants due for a reminder: two on the identity, one for the owner's tool."""
    now = timezone.now()
    identity = IdentityFactory(owner=owner)
    grants = [GrantFactory(identity=identity, scope=ScopeFactory(), expires_at=now + timedelta(days=d)) for d in (3, 6)]
    other_identity = IdentityFactory()  # someone else's identity, behind the owner's tool: the tool owner is asked
    grants.append(
        GrantFactory(
            identity=other_identity,
            scope=ScopeFactory(),
            tool=ToolFactory(owner=owner),
            expires_at=now + timedelta(days=5),
        )
    )
    GrantFactory(identity=identity, scope=ScopeFactory(), expires_at=now + timedelta(days=8))  # not yet
    return grants


def _reminded(grants) -> set[int]:
    return set(
        ScopeGrant.objects.filter(pk__in=[g.pk for g in grants], expiry_reminded_at__isnull=False).values_list(
            "pk", flat=True
        )
    )


def test_job_queues_one_task_per_owner_and_marks_nothing(owner, expiring, queued):
    elsewhere = GrantFactory(scope=ScopeFactory(), expires_at=timezone.now() + timedelta(days=2))
    assert services.grants_remind_expiring() == 4
    assert sorted(queued) == sorted(
        [
            ("notify_grants_expiring", [owner.pk, sorted(g.pk for g in expiring)], {}),
            ("notify_grants_expiring", [elsewhere.identity.owner_id, [elsewhere.pk]], {}),
        ]
    )
    assert _reminded([*expiring, elsewhere]) == set() and mail.outbox == []


@pytest.mark.parametrize("owners", [3, 30])
def test_job_is_one_query_whatever_the_rows(owners, queued, django_assert_num_queries):
    for _ in range(owners):
        identity = IdentityFactory()
        for days in (1, 2):
            GrantFactory(identity=identity, scope=ScopeFactory(), expires_at=timezone.now() + timedelta(days=days))
    with django_assert_num_queries(1):
        assert services.grants_remind_expiring() == 2 * owners
    assert len(queued) == owners


def test_task_sends_then_marks_exactly_the_grants_still_due(owner, expiring):
    revoked, *rest = expiring
    ScopeGrant.objects.filter(pk=revoked.pk).update(status="revoked")
    assert notifications.grants_expiring(owner_id=owner.pk, grant_ids=[g.pk for g in expiring]) == 2
    (message,) = mail.outbox
    assert message.to == [owner.email] and "renew" in message.body.lower()
    assert all(g.scope.name in message.body for g in rest) and revoked.scope.name not in message.body
    assert _reminded(expiring) == {g.pk for g in rest}


def test_a_failed_reminder_stays_unmarked_and_goes_out_later(owner, expiring, settings, celery_eager):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    result = tasks.notify_grants_expiring.apply(args=[owner.pk, [g.pk for g in expiring]])
    assert result.failed() and isinstance(result.result, ConnectionRefusedError)
    assert _reminded(expiring) == set()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.grants_remind_expiring() == 3  # the next hourly run finds them still due
    assert len(mail.outbox) == 1 and _reminded(expiring) == {g.pk for g in expiring}
    assert services.grants_remind_expiring() == 0


def test_job_running_again_before_the_task_gives_one_mail(owner, expiring, queued):
    services.grants_remind_expiring()
    services.grants_remind_expiring()  # the task is still queued (or retrying): the same grants are queued again
    assert len(queued) == 2
    results = [notifications.grants_expiring(owner_id=args[0], grant_ids=args[1]) for _, args, _ in queued]
    assert results == [3, 0] and len(mail.outbox) == 1


def test_reminder_goes_to_the_current_owner_only(owner, other_owner, expiring):
    tool_grant = expiring[-1]
    tool_grant.tool.owner = other_owner
    tool_grant.tool.save(update_fields=["owner"])
    assert notifications.grants_expiring(owner_id=owner.pk, grant_ids=[g.pk for g in expiring]) == 2
    assert tool_grant.scope.name not in mail.outbox[0].body
    assert _reminded(expiring) == {g.pk for g in expiring[:2]}


class GatedMailBackend:
    """Holds the first send until the test opens the gate, so a second task runs while the first is mid-send."""

    sending = threading.Event()
    gate = threading.Event()
    sent: list[list[str]] = []

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        type(self).sending.set()
        assert type(self).gate.wait(20)
        type(self).sent.extend(m.to for m in messages)
        return len(messages)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_copies_of_a_reminder_at_once_send_one_mail(settings):
    owner = UserFactory(username="racer-owner")
    identity = IdentityFactory(owner=owner)
    grants = [GrantFactory(identity=identity, scope=ScopeFactory(), expires_at=timezone.now() + timedelta(days=2))]
    settings.EMAIL_BACKEND = f"{__name__}.GatedMailBackend"
    GatedMailBackend.sending.clear()
    GatedMailBackend.gate.clear()
    GatedMailBackend.sent = []
    results: dict[str, object] = {}

    def run(name: str):
        try:
            results[name] = notifications.grants_expiring(owner_id=owner.pk, grant_ids=[g.pk for g in grants])
        except Exception as error:  # recorded so the test shows it, never swallowed
            results[name] = error
        finally:
            connection.close()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert GatedMailBackend.sending.wait(10)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(timeout=1)
    assert second.is_alive()  # waiting on the grants' row lock while the first copy is sending
    GatedMailBackend.gate.set()
    first.join(timeout=20)
    second.join(timeout=20)
    close_old_connections()
    assert results == {"first": 1, "second": 0}
    assert GatedMailBackend.sent == [[owner.email]]
    assert ScopeGrant.objects.get(pk=grants[0].pk).expiry_reminded_at is not None


@pytest.mark.redis
@pytest.mark.postgres  # a worker thread and the test share the database; in-memory SQLite locks
@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_the_mail_and_the_reminder_through_redis(file_request, security):
    from celery.contrib.testing.worker import start_worker

    assert app.conf.broker_url.startswith("redis://")
    app.control.purge()  # tasks other tests queued and no worker ran would be mailed here too
    request = file_request("read")  # committed: its task is queued on the broker, not run here
    grant = GrantFactory(identity=request.identity, scope=ScopeFactory(), expires_at=timezone.now() + timedelta(days=1))
    assert mail.outbox == []
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert services.grants_remind_expiring() == 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (len(mail.outbox) < 2 or not _reminded([grant])):
            time.sleep(0.2)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([security.email, request.requester.email])
    assert _reminded([grant]) == {grant.pk}
