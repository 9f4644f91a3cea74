"""Findings pages: the list with counts per detector and bulk triage, a finding's detail, and "run a scan now"."""

from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from inventory import selectors, tasks
from inventory.detection import registry
from inventory.detection import triage as services
from inventory.detection.api import FindingFilter
from inventory.detection.scan import scan_create
from inventory.models import AITool, Credential, DetectorRun, Finding, Scan, ScopeGrant, ServiceIdentity
from inventory.paging import CappedPaginator, paged
from nhi_portal import roles
from nhi_portal.decorators import portal_page
from nhi_portal.exceptions import PortalError


class BulkForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    action = forms.ChoiceField(
        choices=[("acknowledge", "Acknowledge"), ("suppress", "Suppress"), ("confirm_change", "Confirm the change")]
    )
    reason = forms.CharField(required=False, max_length=4000)
    until = forms.DateField(required=False)

    def __init__(self, *args, ids, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(i, i) for i in ids]


def _findings_for(user):
    return Finding.objects.visible_to(user).with_last_seen().select_related("tool", "identity")


@portal_page
def finding_list(request):
    base = _findings_for(request.user)
    params = request.GET.copy()
    if "status" not in params:
        params["status"] = "open"
    # Newest first: the primary key orders them without sorting what can be hundreds of thousands of rows (ordering by
    # last seen sorted all 655,000 open findings of the scale data: 1.3 s).
    filterset = FindingFilter(params, queryset=base.order_by("-id"))
    findings = filterset.qs if filterset.is_valid() else base.none()
    paged_findings = paged(request, findings, per_page=50, paginator=CappedPaginator)
    paged_findings["page"].object_list = selectors.with_titles(paged_findings["page"].object_list)
    if roles.sees_everything(request.user):
        # Kept by each detector run: counting 655,000 unresolved findings took 150 ms of this page.
        per_detector = dict(DetectorRun.objects.values_list("detector", "unresolved"))
    else:
        unresolved = base.unresolved().order_by().values_list("detector").annotate(n=Count("*"))
        per_detector = dict(unresolved.values_list("detector", "n"))
    detectors = [(d, per_detector.get(d.key, 0)) for d in registry.all_detectors()]
    context = {
        **paged_findings,
        "filter": filterset,
        "detectors": detectors,
        "latest_scan": Scan.objects.order_by("-id").first() if roles.is_security(request.user) else None,
    }
    template = "inventory/detection/finding_list.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


def _subject(finding: Finding):
    model = {"tool": AITool, "identity": ServiceIdentity, "credential": Credential, "grant": ScopeGrant}
    related = {"credential": ["identity"], "grant": ["identity", "scope", "tool"]}.get(finding.subject_type, [])
    return model[finding.subject_type].objects.select_related(*related).filter(pk=finding.subject_id).first()


@portal_page
def finding_detail(request, pk: int):
    finding = get_object_or_404(_findings_for(request.user), pk=pk)
    try:
        detector = registry.get(finding.detector)
    except KeyError:
        detector = None
    context = {"finding": finding, "detector": detector, "subject": _subject(finding)}
    # finding.tool, not tool_id: a tool deleted while a scan was writing can leave an id with no row behind it.
    if finding.subject_type == "tool" and finding.tool:
        context["secret_matches"] = finding.tool.secret_matches.all()
    return render(request, "inventory/detection/finding_detail.html", context)


@portal_page(role="security")
@require_POST
def finding_bulk(request):
    ids = [int(i) for i in request.POST.getlist("ids") if i.isascii() and i.isdigit() and len(i) < 19]
    form = BulkForm(request.POST, ids=ids)
    if not form.is_valid():
        messages.error(request, "Pick findings and an action.")
        return redirect("inventory:finding_list")
    data = form.cleaned_data
    try:
        if data["action"] == "acknowledge":
            count = services.findings_acknowledge(actor=request.user, ids=data["ids"])
        elif data["action"] == "confirm_change":
            count = services.findings_confirm_changes(actor=request.user, ids=data["ids"], comment=data["reason"])
        else:
            until = data["until"] and timezone.make_aware(
                datetime.combine(data["until"], time.max.replace(microsecond=0))
            )
            count = services.findings_suppress(actor=request.user, ids=data["ids"], reason=data["reason"], until=until)
    except PortalError as error:
        messages.error(request, error.message)
    else:
        done = {"acknowledge": "Acknowledged", "suppress": "Suppressed", "confirm_change": "Confirmed the change on"}
        messages.success(request, f"{done[data['action']]} {count} finding{'s' if count != 1 else ''}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "inventory:finding_list"
    return redirect(target)


@portal_page(role="security")
@require_POST
def scan_start(request):
    with transaction.atomic():
        scan = scan_create(requested_by=request.user)
        transaction.on_commit(lambda: tasks.run_scan.delay(scan.pk))
    if request.htmx:
        return render(request, "inventory/detection/_partials/scan_progress.html", {"scan": scan})
    messages.success(request, f"Scan #{scan.pk} queued.")
    return redirect("inventory:finding_list")


@portal_page(role="security")
def scan_progress(request, pk: int):
    scan = Scan.objects.filter(pk=pk).first()
    if scan is None:
        raise Http404
    return render(request, "inventory/detection/_partials/scan_progress.html", {"scan": scan})
