"""The scan: dedupe, resolve, reopen, suppression, one failing detector, one scan at a time; the demo estate."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory.detection import registry, triage
from inventory.detection.scan import ScanBusy, run_detector, scan_create, scan_run
from inventory.models import AuditEntry, DetectorRun, Finding, PostureSnapshot, Scan
from nhi_portal.exceptions import PortalError
from tests.factories import BindingFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db


def scan(*keys):
    return scan_run(scan_create(detectors=list(keys)).pk)


def test_rescans_never_duplicate_and_count_correctly():
    identity = IdentityFactory(interactive_use_seen=True)
    first = scan("identity_human_use")
    assert first.counts["identity_human_use"] | {"ms": 0} == {"opened": 1, "still_open": 0, "resolved": 0, "ms": 0}
    second = scan("identity_human_use")
    assert second.counts["identity_human_use"]["still_open"] == 1
    assert Finding.objects.filter(subject_id=identity.pk).count() == 1


def test_resolves_when_gone_and_reopens_when_back():
    identity = IdentityFactory(interactive_use_seen=True)
    scan("identity_human_use")
    identity.interactive_use_seen = False
    identity.save()
    assert scan("identity_human_use").counts["identity_human_use"]["resolved"] == 1
    finding = Finding.objects.get()
    assert finding.status == "resolved" and finding.resolved_at is not None
    identity.interactive_use_seen = True
    identity.save()
    assert scan("identity_human_use").counts["identity_human_use"]["opened"] == 1
    finding.refresh_from_db()
    assert finding.status == "open" and finding.resolved_at is None


def unresolved_by_count() -> dict[str, int]:
    detectors = DetectorRun.objects.values_list("detector", flat=True)
    return {key: Finding.objects.filter(detector=key).unresolved().count() for key in detectors}


def test_each_run_keeps_its_unresolved_count_exact_through_resolve_reopen_and_triage(security):
    identities = IdentityFactory.create_batch(3, interactive_use_seen=True)
    scan("identity_human_use")
    triage.findings_acknowledge(actor=security, ids=[Finding.objects.first().pk])
    identities[0].interactive_use_seen = False
    identities[0].save()
    scan("identity_human_use")
    kept = DetectorRun.objects.get(detector="identity_human_use").unresolved
    assert kept == unresolved_by_count()["identity_human_use"] == 2
    identities[0].interactive_use_seen = True
    identities[0].save()
    IdentityFactory(interactive_use_seen=True)
    scan()
    kept = dict(DetectorRun.objects.values_list("detector", "unresolved"))
    assert kept == unresolved_by_count() and kept["identity_human_use"] == 4


def test_findings_page_counts_per_detector_for_everyone_who_sees_them(page_as):
    IdentityFactory.create_batch(2, interactive_use_seen=True)
    scan("identity_human_use")
    for role in ("security", "manager"):
        response = page_as(role).get("/findings/")
        assert {d.key: n for d, n in response.context["detectors"]}["identity_human_use"] == 2


def last_seen(finding: Finding):
    return Finding.objects.with_last_seen().get(pk=finding.pk).last_seen_at


def test_last_seen_is_the_latest_run_that_saw_it_and_stays_once_resolved():
    identity = IdentityFactory(interactive_use_seen=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        scan("identity_human_use")
    finding = Finding.objects.get()
    assert finding.first_seen_at == start and last_seen(finding) == start
    with time_machine.travel(start + timedelta(days=1), tick=False):
        scan("identity_human_use")
    # Seen again: the row was not written, its detector's run says when.
    finding.refresh_from_db()
    assert finding.recorded_last_seen_at == start and last_seen(finding) == start + timedelta(days=1)
    # Another detector's run says nothing about this finding.
    with time_machine.travel(start + timedelta(days=2), tick=False):
        scan("third_party_unreviewed")
    assert last_seen(finding) == start + timedelta(days=1)
    identity.interactive_use_seen = False
    identity.save()
    with time_machine.travel(start + timedelta(days=3), tick=False):
        scan("identity_human_use")
    finding.refresh_from_db()
    assert finding.status == "resolved" and finding.resolved_at == start + timedelta(days=3)
    # Resolved: last seen by the run before the one that no longer saw it, whatever runs come later.
    with time_machine.travel(start + timedelta(days=4), tick=False):
        scan("identity_human_use")
    assert last_seen(finding) == start + timedelta(days=1)
    identity.interactive_use_seen = True
    identity.save()
    with time_machine.travel(start + timedelta(days=5), tick=False):
        scan("identity_human_use")
    finding.refresh_from_db()
    assert finding.status == "open" and finding.first_seen_at == start
    assert last_seen(finding) == start + timedelta(days=5)


def test_last_seen_over_the_api_and_the_page(api_as, page_as):
    IdentityFactory(interactive_use_seen=True)
    when = timezone.now().replace(microsecond=0)
    for day in range(3):
        with time_machine.travel(when + timedelta(days=day), tick=False):
            scan("identity_human_use")
    body = api_as("security").get("/api/v1/findings/").json()["results"][0]
    assert body["first_seen_at"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))
    assert body["last_seen_at"].startswith((when + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S"))
    finding = Finding.objects.get()
    page = page_as("security").get(f"/findings/{finding.pk}/").content.decode()
    assert (when + timedelta(days=2)).strftime("%Y-%m-%d %H:%M") in page


def test_a_failed_run_does_not_move_last_seen():
    IdentityFactory(interactive_use_seen=True)
    scan("identity_human_use")
    before = DetectorRun.objects.get(detector="identity_human_use").ran_at
    detector = registry.get("identity_human_use")

    def broken(ctx):
        raise RuntimeError("detector bug")

    registry._REGISTRY["identity_human_use"] = registry.Detector(**{**detector.__dict__, "query": broken})
    try:
        result = scan("identity_human_use")
    finally:
        registry._REGISTRY["identity_human_use"] = detector
    assert "error" in result.counts["identity_human_use"]
    assert DetectorRun.objects.get(detector="identity_human_use").ran_at == before
    assert Finding.objects.get().status == "open"


def test_a_finding_follows_its_identity_to_another_tool_and_a_new_severity():
    identity = IdentityFactory(interactive_use_seen=True)
    first, second = ToolFactory(), ToolFactory()
    binding = BindingFactory(tool=second, identity=identity)
    scan("identity_human_use")
    assert Finding.objects.get().tool == second
    binding.delete()
    BindingFactory(tool=first, identity=identity)
    detector = registry.get("identity_human_use")
    registry._REGISTRY["identity_human_use"] = registry.Detector(**{**detector.__dict__, "severity": "critical"})
    try:
        counts = scan("identity_human_use").counts["identity_human_use"]
    finally:
        registry._REGISTRY["identity_human_use"] = detector
    finding = Finding.objects.get()
    assert (finding.tool, finding.identity, finding.severity) == (first, identity, "critical")
    assert counts | {"ms": 0} == {"opened": 0, "still_open": 1, "resolved": 0, "ms": 0}


def test_a_redelivered_scan_goes_on_from_the_detectors_it_committed():
    IdentityFactory(interactive_use_seen=True, third_party=True)
    created = scan_create(detectors=["identity_human_use", "third_party_unreviewed"])
    Scan.objects.filter(pk=created.pk).update(status="running", started_at=timezone.now())
    context = registry.Context(now=timezone.now(), thresholds=registry.thresholds())
    run_detector(registry.get("identity_human_use"), scan=created, context=context)  # then its worker died
    assert Scan.objects.get(pk=created.pk).counts["identity_human_use"]["opened"] == 1
    done = scan_run(created.pk)
    assert done.status == "done" and done.progress == done.total == 2
    # Not run twice: a second run would report the finding as still open.
    assert done.counts["identity_human_use"]["opened"] == 1
    assert done.counts["third_party_unreviewed"]["opened"] == 1
    assert Finding.objects.count() == 2


def test_two_workers_of_one_scan_never_run_a_detector_twice_or_lose_each_others_counts():
    """acks_late can redeliver a scan while its first worker still runs: both then walk the same detectors."""
    IdentityFactory(interactive_use_seen=True, third_party=True)
    created = scan_create(detectors=["identity_human_use", "third_party_unreviewed"])
    context = registry.Context(now=timezone.now(), thresholds=registry.thresholds())
    first = run_detector(registry.get("identity_human_use"), scan=created, context=context)
    ran_at = DetectorRun.objects.get(detector="identity_human_use").ran_at
    later = registry.Context(now=timezone.now() + timedelta(minutes=1), thresholds=registry.thresholds())
    # The second worker, with its own stale copy of the scan: the committed result comes back, nothing is rerun.
    assert run_detector(registry.get("identity_human_use"), scan=created, context=later) == first
    assert DetectorRun.objects.get(detector="identity_human_use").ran_at == ran_at
    run_detector(registry.get("third_party_unreviewed"), scan=created, context=later)
    assert set(Scan.objects.get(pk=created.pk).counts) == {"identity_human_use", "third_party_unreviewed"}


def test_acknowledged_stays_acknowledged_while_seen(security):
    IdentityFactory(interactive_use_seen=True)
    scan("identity_human_use")
    finding = Finding.objects.get()
    triage.findings_acknowledge(actor=security, ids=[finding.pk])
    scan("identity_human_use")
    finding.refresh_from_db()
    assert finding.status == "acknowledged" and finding.acknowledged_by == security


def test_suppression_needs_reason_and_end_and_reopens_after(security):
    IdentityFactory(interactive_use_seen=True)
    scan("identity_human_use")
    finding = Finding.objects.get()
    for reason, until in [("", timezone.now() + timedelta(days=3)), ("accepted", None), ("accepted", timezone.now())]:
        with pytest.raises(PortalError):
            triage.findings_suppress(actor=security, ids=[finding.pk], reason=reason, until=until)
    triage.findings_suppress(
        actor=security, ids=[finding.pk], reason="Vendor fix due", until=timezone.now() + timedelta(days=3)
    )
    scan("identity_human_use")
    finding.refresh_from_db()
    assert finding.status == "suppressed"
    with time_machine.travel(timezone.now() + timedelta(days=4)):
        assert scan("identity_human_use").counts["identity_human_use"]["opened"] == 1
    finding.refresh_from_db()
    assert finding.status == "open"
    assert AuditEntry.objects.filter(action="finding.suppressed", comment="Vendor fix due").count() == 1


def test_only_security_triages(owner, manager):
    from django.core.exceptions import PermissionDenied

    IdentityFactory(interactive_use_seen=True)
    scan("identity_human_use")
    for actor in (owner, manager):
        with pytest.raises(PermissionDenied):
            triage.findings_acknowledge(actor=actor, ids=[Finding.objects.get().pk])


def test_a_failing_detector_is_recorded_and_the_others_still_run():
    def broken(ctx):
        raise RuntimeError("detector bug")

    detector = registry.register(
        registry.Detector(
            key="zz_broken", title="Broken", severity="low", subject="tool", query=broken,
            controls=("OWASP-NHI-2025:NHI1",), why=".", what_to_do=".",
        )
    )  # fmt: skip
    try:
        IdentityFactory(interactive_use_seen=True)
        result = scan("zz_broken", "identity_human_use")
        assert "RuntimeError: detector bug" in result.counts["zz_broken"]["error"]
        assert result.counts["identity_human_use"]["opened"] == 1
        assert result.status == "done" and "zz_broken" in result.error
    finally:
        registry._REGISTRY.pop(detector.key)


def test_two_scans_never_run_at_once():
    running = scan_create()
    Scan.objects.filter(pk=running.pk).update(status="running", started_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        Scan.objects.create(status="running")
    queued = scan_create()
    with pytest.raises(ScanBusy):
        scan_run(queued.pk)
    # A scan abandoned by a dead worker stops blocking after a while.
    Scan.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert scan_run(queued.pk).status == "done"
    assert Scan.objects.get(pk=running.pk).status == "failed"


def test_finished_scans_are_not_run_again():
    done = scan("identity_human_use")
    assert scan_run(done.pk) is None


def test_scan_query_count_does_not_grow_with_rows():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_a_scan() -> int:
        created = scan_create()
        with CaptureQueriesContext(connection) as captured:
            scan_run(created.pk)
        return len(captured.captured_queries)

    IdentityFactory.create_batch(3, interactive_use_seen=True, third_party=True)
    few = queries_for_a_scan()
    IdentityFactory.create_batch(60, interactive_use_seen=True, third_party=True)
    many = queries_for_a_scan()
    # Per detector: its previous run, the work table, insert, reopen, update, resolve, the run and the counts (with
    # the transaction's own statements); then the alerts for what opened, a digest here (issue 18); nothing per row.
    assert few == many <= 20 + 16 * len(registry.all_detectors())


def test_every_planted_demo_case_is_found():
    call_command("seed_demo", "--quiet-logins", stdout=StringIO())
    result = scan()
    assert all("error" not in counts for counts in result.counts.values()), result.counts

    def subjects(key):
        return set(Finding.objects.filter(detector=key).values_list("subject_type", "subject_id"))

    from inventory.models import AITool, Credential, ScopeGrant, ServiceIdentity

    def identity(name):
        return ("identity", ServiceIdentity.objects.get(name=name).pk)

    def creds(name):
        return {("credential", c) for c in Credential.objects.filter(identity__name=name).values_list("pk", flat=True)}

    def grant(identity_name, scope):
        return ("grant", ScopeGrant.objects.get(identity__name=identity_name, scope__name=scope, status="active").pk)

    assert creds("gh-copilot-app") <= subjects("credential_not_rotated")  # 540 days, no expiry
    assert creds("svc-old-jira-bot") <= subjects("credential_stale")
    assert creds("svc-release-agent") & subjects("credential_expiring")
    assert grant("gh-copilot-app", "github:secrets:read") in subjects("grant_unused")  # never used, admin
    assert grant("svc-analytics-aws", "aws:iam:admin") in subjects("grant_unused")
    assert {identity("svc-pagerduty-router"), identity("svc-legacy-summarizer")} <= subjects("identity_orphaned")
    assert identity("svc-shared-notifier") in subjects("identity_reused")  # two tools and a shared secret
    assert identity("svc-pagerduty-router") in subjects("identity_reused")  # same secret as the notifier
    assert identity("svc-release-agent") in subjects("identity_env_mixed")
    assert identity("svc-crm-reader") in subjects("identity_human_use")
    assert creds("svc-analytics-aws") <= subjects("secret_exposed")  # in a repository
    assert ("tool", AITool.objects.get(slug="support-bot").pk) in subjects("secret_in_prompt")  # key in its prompt
    assert identity("gh-copilot-app") in subjects("third_party_unreviewed")
    assert ("tool", AITool.objects.get(slug="code-copilot").pk) in subjects("tool_unmediated")
    assert grant("svc-crm-reader", "salesforce:customer:read") in subjects("grant_unapproved")
    healthy = AITool.objects.get(slug="docs-mcp")
    assert not Finding.objects.filter(
        tool=healthy, detector__in=["tool_unmediated", "secret_exposed", "secret_in_prompt"]
    ).exists()


def test_scan_command_runs_a_scan_and_takes_the_posture_snapshot():
    tool = ToolFactory()
    BindingFactory(tool=tool, identity=IdentityFactory(interactive_use_seen=True))
    out = StringIO()
    call_command("scan", "identity_human_use", stdout=out)
    scan = Scan.objects.get()
    assert scan.status == "done" and scan.counts["identity_human_use"]["opened"] == 1
    assert f"Scan {scan.pk} done: 1 findings opened, 0 resolved." in out.getvalue()
    assert PostureSnapshot.objects.filter(tool=tool, day=timezone.localdate()).exists()


def test_scan_command_refuses_unknown_detectors():
    with pytest.raises(CommandError, match="Unknown detector"):
        call_command("scan", "nope", stdout=StringIO())
    assert not Scan.objects.exists()
