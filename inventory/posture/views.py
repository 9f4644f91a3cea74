"""Posture pages: a tool's Posture tab, the compliance overview for managers, a control's page, exports."""

from collections import defaultdict
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.db.models import Count, Min, Q, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from inventory.choices import Environment
from inventory.exports import csv_response
from inventory.models import (
    AITool,
    Attestation,
    Control,
    ControlSnapshot,
    Finding,
    Framework,
    FrameworkSnapshot,
    PostureSnapshot,
)
from inventory.paging import paged
from inventory.posture import evaluate as posture
from inventory.posture import report
from inventory.posture.evidence import evidence_map
from inventory.posture.services import attestation_create
from inventory.posture.titles import framework_title, titled
from nhi_portal.decorators import portal_page
from nhi_portal.exceptions import PortalError

DEFAULT_FRAMEWORK = "OWASP-NHI-2025"


def _framework(request) -> Framework:
    key = request.GET.get("framework") or DEFAULT_FRAMEWORK
    framework = Framework.objects.filter(key=key).first() or Framework.objects.order_by("key").first()
    if framework is None:
        raise Http404("No control catalog loaded: run manage.py load_frameworks.")
    return framework


class AttestationForm(forms.Form):
    control = forms.IntegerField(min_value=1, max_value=2**62)
    note = forms.CharField(max_length=4000)
    expires_at = forms.DateField()


@portal_page
def tool_posture(request, pk: int):
    tool = get_object_or_404(AITool.objects.visible_to(request.user).select_related("owner", "team"), pk=pk)
    framework = _framework(request)
    findings = posture.tool_findings(tool)
    context = {
        "tool": tool,
        "framework": framework,
        "frameworks": titled(Framework.objects.all()),
        "posture": posture.tool_posture(tool, framework, findings=findings),
        # The controls no detector assesses (most of SP 800-53) are listed on request, not on every view.
        "show_others": request.GET.get("others") == "1",
        "tier": posture.risk_tier(tool, findings=findings),
    }
    template = "inventory/posture/tool_posture.html"
    return render(request, f"{template}#posture" if request.htmx else template, context)


@portal_page(role="security")
@require_POST
def attest(request, pk: int):
    tool = get_object_or_404(AITool, pk=pk)
    form = AttestationForm(request.POST)
    control = None
    if form.is_valid():
        control = Control.objects.filter(pk=form.cleaned_data["control"]).select_related("framework").first()
    if control is None:
        messages.error(request, "Attestation needs a control, a note and an expiry date.")
    else:
        try:
            attestation_create(
                actor=request.user, tool=tool, control=control, expires_at=form.cleaned_data["expires_at"],
                note=form.cleaned_data["note"],
            )  # fmt: skip
        except PortalError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Attested {control.ref} for {tool.name}.")
    return redirect(f"{tool.get_absolute_url()}posture/?framework={control.framework.key if control else ''}")


def _visible_snapshots(framework: Framework, day):
    # Only security and managers reach these pages (role "oversight"), and they see every tool: no per-tool scoping
    # join needed.
    return PostureSnapshot.objects.filter(framework=framework, day=day)


def _trend(framework: Framework, days: int) -> list[tuple]:
    """The daily pass rate over the results with evidence: one coverage row a day, the rule of the snapshot."""
    since = timezone.localdate() - timedelta(days=days)
    rows = FrameworkSnapshot.objects.filter(framework=framework, day__gte=since).order_by("day")
    return [(row.day, row.pass_rate) for row in rows if row.pass_rate is not None]


def _coverage(framework: Framework, day) -> FrameworkSnapshot | None:
    return FrameworkSnapshot.objects.filter(framework=framework, day=day).first() if day else None


def _families(framework: Framework, day, *, expand: str | None = None) -> list[dict]:
    """The framework's controls folded by family (category, theme), the families with assessed controls first and,
    inside each, the assessed controls first with their snapshot results. The controls the portal does not assess are
    counted, and listed only for the family `expand` names ("*": all of them): a thousand SP 800-53 titles on every
    view of the page would cost more than the rest of it. Two queries, whatever the catalog's size."""
    primary = evidence_map().primary
    assessed_ids = [ref.split(":", 1)[1] for ref in primary if ref.split(":", 1)[0] == framework.key]
    snaps = {s.control_id: s for s in ControlSnapshot.objects.filter(control__framework=framework, day=day)}
    names = framework.groups or {}
    live = framework.controls.filter(retired_at__isnull=True)
    # Families in catalog order with their sizes, counted in the database: no row per control comes back unless shown.
    sizes = live.order_by().values("group").annotate(n=Count("*"), first=Min("order")).order_by("first")
    groups = {
        row["group"]: {"id": row["group"], "name": names.get(row["group"], ""), "assessed": [], "others": [],
                       "other_count": row["n"]}
        for row in sizes
    }  # fmt: skip
    shown = Q(control_id__in=assessed_ids)
    if expand == "*":
        shown = Q()
    elif expand in groups:
        shown |= Q(group=expand)
    fields = ("framework_id", "control_id", "title", "group", "order", "legacy_ids")
    for control in live.filter(shown).order_by("order").only(*fields):
        group = groups[control.group]
        if control.control_id in assessed_ids:
            group["assessed"].append((control, snaps.get(control.pk)))
            group["other_count"] -= 1
        else:
            group["others"].append(control)
    return sorted(groups.values(), key=lambda g: (not g["assessed"], list(groups).index(g["id"])))


def _svg_points(trend: list[tuple], width: int = 600, height: int = 140) -> str:
    if not trend:
        return ""
    step = width / max(len(trend) - 1, 1)
    return " ".join(
        f"{round(i * step, 1)},{round(height - value * height / 100, 1)}" for i, (_, value) in enumerate(trend)
    )


def _rate(assessed, failing) -> float | None:
    return round(100 * (assessed - failing) / assessed, 1) if assessed else None


def _sums(groups: list[dict]) -> dict[str, int]:
    return {key: sum(group[key] or 0 for group in groups) for key in ("assessed", "failing", "tools")}


@portal_page(role="oversight")
def compliance_overview(request):
    framework = _framework(request)
    day = posture.latest_day(framework)
    snaps = _visible_snapshots(framework, day) if day else PostureSnapshot.objects.none()
    # One pass over the day's snapshot rows (one per tool) grouped by team and environment; the totals and both
    # breakdowns are sums of these few groups. Three queries over the same 10,000 rows cost 45 ms of this page.
    groups = list(
        snaps.values("tool__team__name", "tool__environment")
        .annotate(assessed=Sum("assessed"), failing=Sum("failing"), tools=Count("*"))
        .order_by()
    )
    coverage = _coverage(framework, day)

    def breakdown(field):
        labels = dict(Environment.choices)
        by_value = defaultdict(list)
        for group in groups:
            by_value[group[field]].append(group)
        rows = [(value, _sums(members)) for value, members in by_value.items()]
        return [
            (labels.get(value, value) or "—", sums["tools"], _rate(sums["assessed"], sums["failing"]))
            for value, sums in sorted(rows, key=lambda row: (row[0] is None, row[0] or ""))
        ]

    days = 90 if request.GET.get("days") == "90" else 30
    trend = _trend(framework, days)
    failing_controls = ControlSnapshot.objects.filter(control__framework=framework, day=day, tools_failing__gt=0)
    worst = failing_controls.select_related("control").order_by("-tools_failing", "control__order")[:10] if day else []
    context = {
        "framework": framework,
        "frameworks": titled(Framework.objects.all()),
        "day": day,
        "coverage": coverage,
        "tools": coverage.tools if coverage else 0,
        "pass_rate": coverage.pass_rate if coverage else None,
        "by_team": breakdown("tool__team__name"),
        "by_env": breakdown("tool__environment"),
        "worst": worst,
        "failing_count": failing_controls.count() if day else 0,
        "at_risk": snaps.filter(failing__gt=0).select_related("tool").order_by("-failing", "tool__name")[:10],
        "trend": trend,
        "trend_points": _svg_points(trend),
        "days": days,
        "families": _families(framework, day, expand=request.GET.get("family")) if day else [],
        "expanded": request.GET.get("family"),
    }  # fmt: skip
    template = "inventory/posture/compliance_overview.html"
    return render(request, f"{template}#overview" if request.htmx else template, context)


@portal_page(role="oversight")
def control_detail(request, pk: int):
    control = get_object_or_404(Control.objects.select_related("framework"), pk=pk)
    control.framework.title = framework_title(control.framework)
    evidence = evidence_map()
    detectors = evidence.primary.get(control.ref, [])
    findings = (
        Finding.objects.filter(detector__in=detectors, status__in=posture.FAILING)
        .select_related("tool", "identity")
        .order_by("tool__name", "-severity")
    )
    context = {
        "control": control,
        "detectors": detectors,
        **paged(request, findings, per_page=50),
        "attestations": control.attestations.filter(expires_at__gt=timezone.now()).select_related(
            "tool", "attested_by"
        ),
        "supporting": evidence.supporting.get(control.ref, []),
        "nouns": evidence.nouns(control.ref),
        "crosswalk": _crosswalk(control, evidence),
        "snapshot": ControlSnapshot.objects.filter(control=control).order_by("-day").first(),
    }
    return render(request, "inventory/posture/control_detail.html", context)


def _crosswalk(control: Control, evidence) -> list[tuple[Framework, list[tuple[Control, list[str]]]]]:
    """Controls of the other frameworks that share this control's evidence: a detector primary for both. The view a
    manager audited on one framework asks of the work done for another. One query."""
    detectors = set(evidence.primary.get(control.ref, []))
    shared = {
        tuple(ref.split(":", 1)): sorted(detectors & set(keys))
        for ref, keys in evidence.primary.items()
        if detectors & set(keys) and ref != control.ref
    }
    if not shared:
        return []
    keys = {key for key, _ in shared}
    rows = Control.objects.filter(framework__key__in=keys, retired_at__isnull=True).select_related("framework")
    by_framework: dict[int, tuple[Framework, list]] = {}
    for other in rows.order_by("framework__key", "order"):
        via = shared.get((other.framework.key, other.control_id))
        if via and other.framework_id != control.framework_id:
            by_framework.setdefault(other.framework_id, (other.framework, []))[1].append((other, via))
    return list(by_framework.values())


@portal_page(role="oversight")
def compliance_export(request):
    """The per-tool control matrix of one framework as CSV: pass, fail, attested or not_assessed per cell."""
    framework = _framework(request)
    evidence = evidence_map()
    controls = list(framework.controls.filter(retired_at__isnull=True).order_by("order"))
    for control in controls:
        control.framework = framework
    if request.GET.get("assessed") == "1":
        controls = [c for c in controls if evidence.primary.get(c.ref)]
    ranks = posture.control_ranks(framework=framework, evidence=evidence)
    attested = set(
        Attestation.objects.filter(control__framework=framework, expires_at__gt=timezone.now()).values_list(
            "tool_id", "control_id"
        )
    )

    def cell(tool_id, control):
        # The same rule as every page: rank from the one statement; not_assessed carries its reason.
        if evidence.primary.get(control.ref):
            rank = ranks.get((tool_id, control.pk), posture.NOT_SCANNED)
            status, reason = posture.STATUS_OF_RANK[rank], posture.REASON_OF_RANK[rank]
            return f"{status}: {reason}" if reason else status
        return "attested" if (tool_id, control.pk) in attested else "not_assessed: unmapped"

    tools = AITool.objects.visible_to(request.user).exclude(status="retired").select_related("team").order_by("slug")
    rows = (
        [tool.slug, tool.name, tool.team.slug if tool.team else "", tool.environment,
         *[cell(tool.pk, c) for c in controls]]
        for tool in tools.iterator(chunk_size=2000)
    )  # fmt: skip
    # Names beside the ids: the tool's name after its slug, each control's title after its id in the header.
    header = ["tool", "tool name", "team", "environment", *[f"{c.control_id} {c.title}" for c in controls]]
    return csv_response(f"posture-{framework.key}-{timezone.localdate()}.csv", header, rows)


@portal_page(role="oversight")
def compliance_report(request):
    """The auditor's report: dated and printable (A4 and Letter), across frameworks, with the catalog versions used, a
    tool x control matrix, the response times as incident-response evidence, attestations and exceptions, and a
    sign-off block. A fixed number of queries whatever the estate's size (inventory.posture.report)."""
    only_assessed = request.GET.get("assessed") == "1"
    context = report.build(request.user, only_assessed=only_assessed, families_of=_families)
    context |= {"today": timezone.now(), "only_assessed": only_assessed}
    return render(request, "inventory/posture/compliance_report.html", context)
