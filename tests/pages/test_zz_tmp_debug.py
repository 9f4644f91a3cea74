import pytest
from django.utils import timezone
from tests.e2e.test_home_journeys import world  # noqa: F401
from home import manager
from inventory.models import ControlSnapshot, FrameworkSnapshot, PostureSnapshot, Finding
pytestmark = pytest.mark.django_db
def test_dbg(world):
    print(list(Finding.objects.values_list("detector", "status")))
    print(ControlSnapshot.objects.count(), list(ControlSnapshot.objects.filter(tools_failing__gt=0).values_list("day", "control__control_id")[:5]))
    print(list(FrameworkSnapshot.objects.values_list("day", "framework__key", "failing")[:5]))
    h = manager.manager_home(now=timezone.now())
    print(h.get("latest_day"), h["controls"][:3])
    assert 0
