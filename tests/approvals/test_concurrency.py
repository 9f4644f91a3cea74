"""Approvers racing on PostgreSQL: the row lock serialises them, so decisions and grants come out exact."""

import threading

import pytest
from django.db import close_old_connections, connection

from approvals import services
from approvals.models import Decision
from inventory.models import ScopeGrant
from nhi_portal.exceptions import Conflict
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(request_id: int, actors, kind: str = "approve") -> list[str]:
    barrier = threading.Barrier(len(actors))
    outcomes: list[str] = []
    lock = threading.Lock()

    def decide(actor):
        try:
            barrier.wait()
            services.request_decide(actor=actor, request_id=request_id, kind=kind)
            result = "ok"
        except Conflict:
            result = "conflict"
        except Exception as error:  # recorded so the test shows it, never swallowed
            result = f"error: {error!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=decide, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    return outcomes


def test_many_approvers_at_once_give_exactly_two_decisions_and_one_set_of_grants(file_request, identity):
    request = file_request("read", "write")  # two scopes, two-person rule
    approvers = [UserFactory(username=f"racer{i}", roles=["security"]) for i in range(6)]
    outcomes = _race(request.pk, approvers)
    assert sorted(outcomes) == ["conflict"] * 4 + ["ok"] * 2
    request.refresh_from_db()
    assert request.status == "approved"
    assert Decision.objects.filter(request=request).count() == 2
    assert ScopeGrant.objects.filter(identity=identity, status="active").count() == 2


def test_double_click_by_one_approver_counts_once(file_request):
    request = file_request("write")
    approver = UserFactory(username="clicker", roles=["security"])
    outcomes = _race(request.pk, [approver, approver, approver])
    assert sorted(outcomes) == ["conflict", "conflict", "ok"]
    assert Decision.objects.filter(request=request).count() == 1
    request.refresh_from_db()
    assert request.status == "pending"
