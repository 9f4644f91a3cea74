"""Gauges read from the database when /metrics is scraped: sealing lag, open findings by severity, the age of the last
scan and of beat's last tick.

Computed at scrape time rather than kept by the processes that change them: the database is the one place that
knows them whichever process (web, worker, beat) did the change, and a scrape every 15 s or so costs a handful of
indexed queries. If the database cannot answer, the scrape still returns every other metric, with
`nhi_database_collector_up 0`.
"""

import logging

from django.db.models import Count, Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from prometheus_client.core import GaugeMetricFamily

from inventory.audit.runs import unverified_batches, verification_lag
from inventory.audit.sealing import lag_bound, sealing_lag
from inventory.audit.siem import siem_push_lag
from inventory.detection.measures import response_measures
from inventory.models import DetectorRun, Finding
from inventory.models.findings import FindingStatus, Severity

logger = logging.getLogger(__name__)


class DatabaseCollector:
    def collect(self):
        up = GaugeMetricFamily("nhi_database_collector_up", "1 when the database-derived gauges below could be read.")
        try:
            families = list(self._families())
        except Exception:  # a scrape must not fail because the database is down; the gauge says it
            logger.exception("metrics: could not read the database-derived gauges")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self):
        now = timezone.now()
        lag = sealing_lag()
        yield GaugeMetricFamily(
            "nhi_audit_sealing_lag_seconds",
            "Seconds the oldest unsealed audit entry or access event has waited (0 when none waits).",
            value=lag or 0.0,
        )
        yield GaugeMetricFamily(
            "nhi_audit_sealing_lag_bound_seconds",
            "How old an unsealed entry may get before verify reports sealing as behind.",
            value=lag_bound().total_seconds(),
        )

        verified = verification_lag()
        if verified is not None:
            yield GaugeMetricFamily(
                "nhi_audit_verification_age_seconds",
                "Seconds since the audit chain's last finished verification (incremental or full).",
                value=verified,
            )
        yield GaugeMetricFamily(
            "nhi_audit_unverified_batches",
            "Sealed batches no verification has checked yet (the next incremental run's work).",
            value=unverified_batches(),
        )
        siem_lag = siem_push_lag()
        if siem_lag is not None:
            yield GaugeMetricFamily(
                "nhi_siem_push_lag_seconds",
                "Seconds the oldest decision or audit entry not yet delivered to the SIEM sink has waited.",
                value=siem_lag,
            )

        response = GaugeMetricFamily(
            "nhi_response_seconds",
            "Time from an exposure to its finding, its first alert, its containment: median and p95, last 30 days.",
            labels=["measure", "quantile"],
        )
        for measure in response_measures(now=now):
            for quantile, value in (("0.5", measure.median), ("0.95", measure.p95)):
                if value is not None:
                    response.add_metric([measure.name.lower().replace(" ", "_"), quantile], value.total_seconds())
        yield response

        open_findings = GaugeMetricFamily(
            "nhi_findings_open",
            "Open findings (not acknowledged, suppressed or resolved), by severity.",
            labels=["severity"],
        )
        counts = dict(
            Finding.objects.filter(status=FindingStatus.OPEN)
            .order_by()
            .values_list("severity")
            .annotate(n=Count("pk"))
            .values_list("severity", "n")
        )
        for severity in Severity.values:
            open_findings.add_metric([severity], counts.get(severity, 0))
        yield open_findings

        last_scan = DetectorRun.objects.aggregate(last=Max("ran_at"))["last"]
        if last_scan is not None:
            yield GaugeMetricFamily(
                "nhi_last_scan_age_seconds",
                "Seconds since a detector last ran to completion.",
                value=(now - last_scan).total_seconds(),
            )
        last_tick = PeriodicTask.objects.aggregate(last=Max("last_run_at"))["last"]
        if last_tick is not None:
            yield GaugeMetricFamily(
                "nhi_beat_last_tick_age_seconds",
                "Seconds since beat last recorded running a periodic task (written back every few minutes).",
                value=(now - last_tick).total_seconds(),
            )
