import pytest
from django.db import transaction
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
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


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_truncate_triggers():
    """Let TransactionTestCase and live_server tests empty the audit tables between tests.

    PostgreSQL refuses TRUNCATE on audit entries, access events and batches (migration 0014), and Django's flush is a
    TRUNCATE. Only here, in the test run, the flush runs as a replica would apply changes, which skips triggers
    (`session_replication_role`, for superusers such as the test role); production settings have no such path.
    """
    original = PostgresOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
            original(self, sql_list)

    PostgresOperations.execute_sql_flush = execute_sql_flush
    yield
    PostgresOperations.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _audit_anchor_in_tmp(settings, tmp_path):
    """Every test gets its own audit anchor, so none appends to var/ or sees another test's digests."""
    settings.AUDIT_ANCHOR_PATH = tmp_path / "audit-anchor.jsonl"
    return settings.AUDIT_ANCHOR_PATH


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
def celery_eager():
    """Queued tasks (mail, say) run in the caller, as a worker would run them; retries run at once."""
    from nhi_portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


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
