import pytest
from rest_framework.test import APIClient

from tests import services
from tests.factories import UserFactory

ROLE_NAMES = ("anonymous", "owner", "other_owner", "security", "manager", "gateway")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres"):
            item.fixturenames.append("_needs_postgres")
        if item.get_closest_marker("redis"):
            item.fixturenames.append("_needs_redis")
        if item.get_closest_marker("browser"):
            item.fixturenames.append("_needs_browser")


@pytest.fixture
def _needs_postgres(db):
    if not services.using_postgres():
        services.missing("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def _needs_redis():
    if services.redis_broker_url() is None:
        services.missing("needs Redis: set CELERY_BROKER_URL=redis://127.0.0.1:6379/0 with Redis running")


@pytest.fixture
def _needs_browser():
    if not services.chromium_available():
        services.missing(f"needs Chromium at {services.CHROMIUM} and the playwright package")


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def other_owner(db):
    return UserFactory(username="owner2")


@pytest.fixture
def security(db):
    return UserFactory(username="sec", roles=["security"])


@pytest.fixture
def manager(db):
    return UserFactory(username="mgr", roles=["manager"])


@pytest.fixture
def gateway(db):
    return UserFactory(username="gw", roles=["gateway"])


@pytest.fixture
def users(owner, other_owner, security, manager, gateway):
    return {
        "anonymous": None,
        "owner": owner,
        "other_owner": other_owner,
        "security": security,
        "manager": manager,
        "gateway": gateway,
    }


@pytest.fixture
def api_as(users):
    """An API client signed in as one of the roles in ROLE_NAMES (None: anonymous)."""

    def make(role: str) -> APIClient:
        client = APIClient()
        if users[role] is not None:
            client.force_authenticate(users[role])
        return client

    return make


@pytest.fixture
def page_as(users, client):
    def make(role: str):
        client.logout()
        if users[role] is not None:
            client.force_login(users[role])
        return client

    return make
