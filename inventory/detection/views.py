"""Findings pages: the list with counts per detector and bulk triage, a finding's detail, and "run a scan now"."""

from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from inventory import selectors, tasks
from inventory.detection import containment, filter_choices, registry
from inventory.detection import triage as services
from inventory.detection.api import FindingFilter
from inventory.detection.measures import response_measures
from inventory.detection.scan import scan_create
from inventory.models import AITool, Credential, DetectorRun, Finding, Scan, ScopeGrant, ServiceIdentity, Team
from inventory.models.findings import SEVERITY_RANK
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


# The list's orders, each served by an index at scale (655,000 open findings): by risk, the open-by-rank index (rank,
# first_seen_at, id), read backwards for least severe first; by first seen, the primary key, since a finding's
# first_seen_at is set when its row is inserted and never changes; by detector, the unique index that leads with it.
# Ordering by last seen sorted every open finding (1.3 s).
ORDERINGS = {
    "risk": (SEVERITY_RANK, "first_seen_at", "pk"),
    "-risk": (SEVERITY_RANK.desc(), "-first_seen_at", "-pk"),
    "first_seen": ("pk",),
    "-first_seen": ("-pk",),
    "detector": ("detector", "-pk"),
    "-detector": ("-detector", "-pk"),
}


def _findings_for(user):
    # Subjects named in the same query (a credential's kind and last four, a grant's scope): no lookup per page.
    findings = selectors.with_subject_columns(Finding.objects.visible_to(user))
    return findings.with_last_seen().select_related("tool", "identity")


@portal_page
def finding_list(request):
    base = _findings_for(request.user)
    params = request.GET.copy()
    if "status" not in params:
        params["status"] = "open"
    ordering = params.get("ordering", "")
    if ordering not in ORDERINGS:
        ordering = "risk"
    filterset = FindingFilter(params, queryset=base.order_by(*ORDERINGS[ordering]))
    findings = filterset.qs if filterset.is_valid() else base.none()
    paged_findings = paged(request, findings, per_page=50, paginator=CappedPaginator)
    page_rows = selectors.with_titles(paged_findings["page"].object_list)
    paged_findings["page"].object_list = selectors.with_subject_names(page_rows)
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
        "teams": Team.objects.order_by("name").only("slug", "name"),  # a choice, not a slug to type
        # The tool and owner filters are pickers (filter_choices): only the chosen one is rendered, by name.
        **({} if request.htmx else _chosen_filters(request)),
        "latest_scan": Scan.objects.order_by("-id").first() if roles.is_security(request.user) else None,
        # issue 18: time to detect, alert and contain; not for htmx swaps of the results
        "measures": response_measures() if roles.is_security(request.user) and not request.htmx else [],
    }
    template = "inventory/detection/finding_list.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


def _chosen_filters(request) -> dict:
    """The tool and owner the list is filtered by, named for their pickers; a value the reader may not see (or that
    does not exist) is kept as typed, so the filter still says what it matches (nothing)."""
    chosen = {}
    slug = request.GET.get("tool", "").strip()[:200]
    if slug:
        tool = AITool.objects.visible_to(request.user).filter(slug=slug).values_list("name", flat=True).first()
        chosen["chosen_tool"] = (slug, filter_choices.tool_label(tool, slug) if tool else slug)
    username = request.GET.get("owner", "").strip()[:200]
    if username:
        owner = (
            get_user_model()
            .objects.filter(username=username, pk__in=AITool.objects.visible_to(request.user).values("owner_id"))
            .values_list("username", "first_name", "last_name")
            .first()
        )
        chosen["chosen_owner"] = (username, filter_choices.owner_label(*owner) if owner else username)
    return chosen


def _subject(finding: Finding):
    model = {"tool": AITool, "identity": ServiceIdentity, "credential": Credential, "grant": ScopeGrant}
    related = {"credential": ["identity"], "grant": ["identity", "scope", "tool"]}.get(finding.subject_type, [])
    return model[finding.subject_type].objects.select_related(*related).filter(pk=finding.subject_id).first()


@portal_page
def finding_detail(request, pk: int):
    finding = get_object_or_404(_findings_for(request.user), pk=pk)
    selectors.with_subject_names([finding])  # the page's title names the finding's subject
    try:
        detector = registry.get(finding.detector)
    except KeyError:
        detector = None
    context = {"finding": finding, "detector": detector, "subject": _subject(finding)}
    context["may_contain"] = finding.status != "resolved" and containment.may_contain(request.user, finding)  # issue 18
    # finding.tool, not tool_id: a tool deleted while a scan was writing can leave an id with no row behind it.
    if finding.subject_type == "tool" and finding.tool:
        context["secret_matches"] = finding.tool.secret_matches.all()
    return render(request, "inventory/detection/finding_detail.html", context)


@portal_page(role="security")
@require_POST
def finding_bulk(request):
    """Acknowledge, suppress or confirm the chosen findings. From the list (htmx) it answers the changed rows, swapped
    in place with their new status, so they stay visible until the list is reloaded, and a line saying what was
    done; a plain form post redirects back with that line as a message."""
    ids = [int(i) for i in request.POST.getlist("ids") if i.isascii() and i.isdigit() and len(i) < 19]
    form = BulkForm(request.POST, ids=ids)
    if not form.is_valid():
        return _triage_answer(request, error="Pick findings and an action.")
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
        return _triage_answer(request, error=error.message)
    done = {"acknowledge": "Acknowledged", "suppress": "Suppressed", "confirm_change": "Confirmed the change on"}
    return _triage_answer(
        request, done=f"{done[data['action']]} {count} finding{'s' if count != 1 else ''}.", ids=data["ids"]
    )


def _triage_answer(request, *, error: str = "", done: str = "", ids: list[int] | None = None):
    if request.htmx:
        rows = []
        if ids:
            changed = _findings_for(request.user).filter(pk__in=ids).order_by(*ORDERINGS["risk"])
            rows = selectors.with_subject_names(selectors.with_titles(changed))
        context = {"error": error, "done": done, "rows": rows}
        return render(
            request, "inventory/detection/_partials/triage_result.html", context, status=400 if error else 200
        )
    if error:
        messages.error(request, error)
        return redirect("inventory:finding_list")
    messages.success(request, done)
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
        return render(request, "inventory/detection/_partials/scan_progress.html", _scan_context(scan))
    messages.success(request, "Scan queued: the findings list reloads itself when it is done.")
    return redirect("inventory:finding_list")


@portal_page(role="security")
def scan_progress(request, pk: int):
    scan = Scan.objects.filter(pk=pk).first()
    if scan is None:
        raise Http404
    response = render(request, "inventory/detection/_partials/scan_progress.html", _scan_context(scan))
    if scan.status == Scan.Status.DONE:
        # The list behind it listens for this and reloads itself with its own filters (#results).
        response["HX-Trigger"] = "findings-changed"
    return response


def _scan_context(scan: Scan) -> dict:
    """The scan and, once done, what it changed: findings opened (new or reopened) and resolved, over its detectors."""
    counts = [c for c in (scan.counts or {}).values() if isinstance(c, dict)]
    return {
        "scan": scan,
        "opened": sum(int(c.get("opened") or 0) for c in counts),
        "resolved": sum(int(c.get("resolved") or 0) for c in counts),
    }
