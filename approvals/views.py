"""Approvals pages: my requests, the request form, the security review queue, request detail and grants."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from inventory.choices import GrantStatus
from inventory.filters import GrantFilter
from inventory.models import AITool
from inventory.paging import paged
from nhi_portal import roles
from nhi_portal.decorators import portal_page
from nhi_portal.exceptions import PortalError

from . import forms, policy, selectors, services
from .choices import DecisionKind, RequestStatus
from .models import AccessRequest, PolicySettings


@portal_page
def request_list(request):
    queryset = selectors.request_list(user=request.user).order_by("-created_at")
    status = request.GET.get("status", "")
    if status in RequestStatus.values:
        queryset = queryset.filter(status=status)
    if not roles.sees_everything(request.user) or request.GET.get("mine"):
        queryset = queryset.filter(requester=request.user)
    context = {"status": status, "statuses": RequestStatus.choices, **paged(request, queryset, per_page=25)}
    template = "approvals/request_list.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


def _scope_rows(form):
    """Scopes with their risk and the resource the user typed, for the checkbox table."""
    checked = {str(v) for v in form["scopes"].value() or []}
    return [
        {
            "scope": scope,
            "checked": str(scope.pk) in checked,
            "resource": form.data.get(f"{forms.RESOURCE_PREFIX}{scope.pk}", ""),
        }
        for scope in form.offered_scopes.order_by("name")
    ]


@portal_page(role="write")
@require_http_methods(["GET", "POST"])
def request_create(request):
    # Prefilled from links ("Request scopes" on a tool, "Request again" on home): tool, identity and scopes.
    initial = {name: request.GET.get(name) for name in ("tool", "identity") if request.GET.get(name)}
    if request.GET.getlist("scope"):
        initial["scopes"] = request.GET.getlist("scope")
    form = forms.AccessRequestForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            filed = services.request_file(
                requester=request.user,
                tool=data["tool"],
                identity=data["identity"],
                items=data["items"],
                justification=data["justification"],
                duration_days=data["duration_days"],
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Request filed for {filed.tool.name} · {filed.identity.name}.")
            return redirect(filed)
    context = {"form": form, "scope_rows": _scope_rows(form), "rules": policy.RULES, "caps": policy.MAX_DAYS_BY_RISK}
    return render(request, "approvals/request_form.html", context, status=400 if form.errors else 200)


@portal_page(role="write")
@require_GET
def request_identity_options(request):
    """htmx: the identity <select> for the chosen tool (dependent select)."""
    tools = AITool.objects.editable_by(request.user)
    identities = forms.identities_for_tool(tools, request.GET.get("tool"))
    return render(request, "approvals/_partials/identity_options.html", {"identities": identities})


def _detail_context(request, pk: int) -> dict:
    try:
        access_request = selectors.request_detail(user=request.user, pk=pk)
    except AccessRequest.DoesNotExist:
        raise Http404 from None
    renewal_opens = _renewal_opens(access_request)
    may_renew = services.request_may_renew(request.user, access_request)
    return {
        "req": access_request,
        "can_decide": services.request_may_decide(request.user, access_request),
        "can_cancel": services.request_may_cancel(request.user, access_request),
        # Renew is offered inside the renewal window only; before it, the page says from when.
        "can_renew": may_renew and (renewal_opens is None or renewal_opens <= timezone.now()),
        "renewal_opens": renewal_opens if may_renew and renewal_opens and renewal_opens > timezone.now() else None,
        "renewal_days": policy.REMINDER_DAYS,
        "rules": [(key, policy.describe(key)) for key in access_request.policy_rules],
        "decision_form": forms.DecisionForm(),
    }


def _renewal_opens(access_request: AccessRequest):
    """When renewing the request makes sense: REMINDER_DAYS before the first of its active grants expires (the day the
    owner is reminded). None when no active grant would lapse (all expired, revoked, or never expiring): then the
    service's own checks decide. Reads the grants request_detail prefetched."""
    expiries = [
        issue.grant.expires_at
        for issue in access_request.issues.all()
        if issue.grant.status == GrantStatus.ACTIVE and issue.grant.expires_at
    ]
    return min(expiries) - timedelta(days=policy.REMINDER_DAYS) if expiries else None


@portal_page
def request_detail(request, pk: int):
    return render(request, "approvals/request_detail.html", _detail_context(request, pk))


def _visible_or_404(request, pk: int) -> None:
    if not AccessRequest.objects.visible_to(request.user).filter(pk=pk).exists():
        raise Http404


@portal_page(role="write")
@require_POST
def request_decide(request, pk: int, kind: str):
    _visible_or_404(request, pk)
    form = forms.DecisionForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        services.request_decide(actor=request.user, request_id=pk, kind=kind, comment=comment)
    except PortalError as error:
        if request.htmx and request.POST.get("from") == "queue":
            row = selectors.review_queue_row(user=request.user, pk=pk)
            row.deciding_rule = _deciding_rule(row)
            context = {"req": row, "error": error.message}
            return render(request, "approvals/_partials/queue_row.html", context, status=error.status_code)
        messages.error(request, error.message)
        return redirect("approvals:request_detail", pk=pk)
    if request.htmx and request.POST.get("from") == "queue":
        row = selectors.review_queue_row(user=request.user, pk=pk)
        row.deciding_rule = _deciding_rule(row)
        return render(request, "approvals/_partials/queue_row.html", {"req": row, "decided": kind})
    messages.success(request, "Approval recorded." if kind == DecisionKind.APPROVE else "Request denied.")
    return redirect("approvals:request_detail", pk=pk)


def _simple_transition(request, pk: int, run, success: str, *, to_detail: bool = True):
    _visible_or_404(request, pk)
    try:
        result = run()
    except PortalError as error:
        messages.error(request, error.message)
        return redirect("approvals:request_detail", pk=pk)
    messages.success(request, success)
    target = result.get_absolute_url() if to_detail else reverse("approvals:request_list")
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@portal_page(role="write")
@require_POST
def request_cancel(request, pk: int):
    return _simple_transition(
        request, pk, lambda: services.request_cancel(actor=request.user, request_id=pk), "Request cancelled."
    )


@portal_page(role="write")
@require_POST
def request_renew(request, pk: int):
    return _simple_transition(
        request, pk, lambda: services.request_renew(requester=request.user, request_id=pk), "Renewal filed."
    )


@portal_page(role="security")
def review_queue(request):
    queue = selectors.review_queue(user=request.user)
    context = {"decision_form": forms.DecisionForm(), **paged(request, queue, per_page=50)}
    for row in context["page"].object_list:
        row.deciding_rule = _deciding_rule(row)
    return render(request, "approvals/review_queue.html", context)


def _deciding_rule(access_request: AccessRequest) -> str:
    """The policy rule that set how many approvals the request needs: of the rules it matched when filed, the one
    asking the most."""
    matched = [rule for rule in policy.RULES if rule.key in access_request.policy_rules]
    deciding = max(matched, key=lambda rule: rule.required_approvals, default=None)
    return deciding.description if deciding else ""


@portal_page
def grant_list(request):
    filterset = GrantFilter(request.GET, queryset=selectors.grant_list(user=request.user).order_by("expires_at"))
    queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    context = {"filter": filterset, "revoke_form": forms.RevokeForm(), **paged(request, queryset, per_page=50)}
    context["renewal_cutoff"] = _renewal_cutoff()
    template = "approvals/grant_list.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


def _renewal_cutoff():
    """Grants expiring before this are inside their renewal window: their row offers Renew."""
    return timezone.now() + timedelta(days=policy.REMINDER_DAYS)


@portal_page(role="write")
@require_POST
def grant_revoke(request, pk: int):
    grant = selectors.grant_list(user=request.user).filter(pk=pk).first()
    if grant is None:
        raise Http404
    if not services.grant_may_revoke(request.user, grant):
        raise PermissionDenied
    form = forms.RevokeForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.grant_revoke(actor=request.user, grant_id=pk, reason=form.cleaned_data["reason"])
        except PortalError as exc:
            error = exc.message
    else:
        error = "Give a reason for revoking."
    grant = selectors.grant_list(user=request.user).get(pk=pk)
    if request.htmx:
        context = {"grant": grant, "revoke_form": form, "error": error, "renewal_cutoff": _renewal_cutoff()}
        return render(request, "approvals/_partials/grant_row.html", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Grant revoked.")
    return redirect("approvals:grant_list")


@portal_page(role="security")
@require_POST
def policy_update(request):
    try:
        days = int(request.POST["auto_approve_max_days"])
    except KeyError:
        days = PolicySettings.current().auto_approve_max_days  # not given: unchanged
    except ValueError:
        days = 0  # refused by the service, with the range it accepts
    try:
        services.policy_settings_update(
            actor=request.user, auto_approve_low_risk=request.POST.get("auto_approve_low_risk") == "on",
            auto_approve_max_days=days,
        )  # fmt: skip
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Approval policy updated.")
    return redirect("approvals:policy")


@portal_page
def policy_page(request):
    settings_row = PolicySettings.current()
    rows = [(r.key, r.description, r.required_approvals) for r in policy.RULES]
    context = {
        "rows": rows,
        "caps": policy.MAX_DAYS_BY_RISK,
        "sensitive_cap": policy.MAX_DAYS_SENSITIVE,
        "settings_row": settings_row,
        "auto_description": policy.describe(policy.AUTO_APPROVE_RULE),
        "auto_max_days_limit": policy.AUTO_APPROVE_MAX_DAYS_LIMIT,
        "pending_days": policy.PENDING_EXPIRY_DAYS,
        "reminder_days": policy.REMINDER_DAYS,
    }
    return render(request, "approvals/policy.html", context)
