"""The readiness checks behind /readyz, as django-health-check checks.

Each check raises `ServiceUnavailable` with a message that names what is wrong and never a URL, host or key (the
library turns any other exception into "unknown error" and logs it). Thresholds come from settings
(READINESS_*; 0 turns a check off). What a check measured goes in `observed`, shown to those who may see details.

The library runs a synchronous check in a thread pool. Checks that touch the database run instead through asgiref's
`sync_to_async` (thread-sensitive): back on the request's own thread and database connection, which Django closes at
the end of the request, rather than on pool threads whose connections nobody would close.
"""

import dataclasses
import datetime
import os
import typing

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from health_check import HealthCheck
from health_check.checks import Database as LibraryDatabase
from health_check.exceptions import ServiceUnavailable

from inventory.audit.anchor import FileAnchor, get_anchor
from inventory.audit.sealing import lag_bound, sealing_lag
from inventory.audit.siem import siem_push_lag
from inventory.models import DetectorRun


def _timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.READINESS_CHECK_TIMEOUT_SECONDS)


@dataclasses.dataclass
class PortalCheck(HealthCheck):
    """A check with a short name for the report and the values it measured."""

    name: typing.ClassVar[str] = ""
    on_request_thread: typing.ClassVar[bool] = True
    observed: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self.timeout = _timeout()

    async def run(self) -> None:
        await sync_to_async(self.probe, thread_sensitive=self.on_request_thread)()

    def probe(self) -> None:
        raise NotImplementedError


@dataclasses.dataclass
class Database(PortalCheck):
    name = "database"

    def probe(self) -> None:
        LibraryDatabase().run()


@dataclasses.dataclass
class Broker(PortalCheck):
    """The Celery broker accepts a connection (Redis, RabbitMQ, or `make run`'s filesystem broker)."""

    name = "broker"
    on_request_thread = False  # no database: it may wait on the network beside the other checks

    def probe(self) -> None:
        from nhi_portal.celery import app

        seconds = settings.READINESS_CHECK_TIMEOUT_SECONDS
        options = {"socket_connect_timeout": seconds, "socket_timeout": seconds, "max_retries": 0}
        try:
            with app.connection_for_write(transport_options=options) as connection:
                connection.ensure_connection(max_retries=1, timeout=seconds)
                self.observed["transport"] = connection.transport_cls
        except Exception as error:  # any failure is "unreachable"; its text may carry the broker's URL, so not shown
            raise ServiceUnavailable(f"broker unreachable ({type(error).__name__})") from error


@dataclasses.dataclass
class BeatTick(PortalCheck):
    """Beat is alive: the newest run time beat recorded for any periodic task.

    django-celery-beat writes run times back every three minutes, and the seal job is due every minute, so a running
    beat is never more than about four minutes behind here."""

    name = "beat"

    def probe(self) -> None:
        limit = settings.READINESS_BEAT_MAX_AGE_SECONDS
        if not limit:
            self.observed["disabled"] = True
            return
        last = PeriodicTask.objects.aggregate(last=Max("last_run_at"))["last"]
        if last is None:
            raise ServiceUnavailable("beat has never run a periodic task")
        age = (timezone.now() - last).total_seconds()
        self.observed |= {"last_tick_age_seconds": round(age, 1), "max_age_seconds": limit}
        if age > limit:
            raise ServiceUnavailable(f"beat's last tick was {age:.0f} s ago (limit {limit} s)")


@dataclasses.dataclass
class SealingLag(PortalCheck):
    """The oldest unsealed audit entry or access event is not older than the bound (the sealing job keeps up)."""

    name = "sealing_lag"

    def probe(self) -> None:
        limit = settings.READINESS_SEALING_LAG_MAX_SECONDS
        if limit == 0:
            self.observed["disabled"] = True
            return
        if limit is None:
            limit = lag_bound().total_seconds()
        lag = sealing_lag()
        self.observed |= {"lag_seconds": None if lag is None else round(lag, 1), "max_lag_seconds": limit}
        if lag is not None and lag > limit:
            raise ServiceUnavailable(f"sealing lags {lag:.0f} s behind (limit {limit:.0f} s)")


@dataclasses.dataclass
class AnchorReachable(PortalCheck):
    """The audit anchor can be appended to: without it, sealed batches cannot be anchored and verify reports them."""

    name = "anchor"
    on_request_thread = False

    def probe(self) -> None:
        try:
            anchor = get_anchor()
        except Exception as error:
            raise ServiceUnavailable("the audit anchor is not configured") from error
        if isinstance(anchor, FileAnchor):
            path = anchor.path
            writable = os.access(path, os.W_OK) if path.exists() else os.access(path.parent, os.W_OK | os.X_OK)
            if not writable:
                raise ServiceUnavailable("the audit anchor file cannot be appended to")
            self.observed["kind"] = "file"
            return
        try:
            next(iter(anchor.newest_first()), None)
        except Exception as error:
            raise ServiceUnavailable(f"the audit anchor cannot be read ({type(error).__name__})") from error


@dataclasses.dataclass
class LastScan(PortalCheck):
    """A detection scan ran recently: the findings, posture and alerts are only as fresh as the last scan."""

    name = "last_scan"

    def probe(self) -> None:
        hours = settings.READINESS_SCAN_MAX_AGE_HOURS
        if not hours:
            self.observed["disabled"] = True
            return
        last = DetectorRun.objects.aggregate(last=Max("ran_at"))["last"]
        if last is None:
            raise ServiceUnavailable("no detection scan has run yet")
        age = (timezone.now() - last).total_seconds()
        self.observed |= {"age_seconds": round(age), "max_age_seconds": hours * 3600}
        if age > hours * 3600:
            raise ServiceUnavailable(f"the last scan ran {age / 3600:.1f} h ago (limit {hours} h)")


@dataclasses.dataclass
class SiemPushLag(PortalCheck):
    """The SIEM sink (when one is configured) receives decisions and audit entries within the bound."""

    name = "siem_push_lag"

    def probe(self) -> None:
        limit = settings.READINESS_SIEM_LAG_MAX_SECONDS
        lag = siem_push_lag()
        if lag is None or not limit:
            self.observed["disabled"] = True
            return
        self.observed |= {"lag_seconds": round(lag, 1), "max_lag_seconds": limit}
        if lag > limit:
            raise ServiceUnavailable(f"the SIEM sink lags {lag:.0f} s behind (limit {limit} s)")


READINESS_CHECKS = (Database, Broker, BeatTick, SealingLag, AnchorReachable, LastScan, SiemPushLag)
