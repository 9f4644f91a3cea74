"""Inventory pages. Thin: reads come from selectors, writes from services; one view serves page and htmx partial."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from nhi_portal.decorators import portal_page
from nhi_portal.exceptions import PortalError

from . import filters, forms, selectors, services
from .exports import csv_response
from .integration import gateway_config
from .models import AITool, ServiceIdentity
from .models.querysets import owner_may_edit
from .paging import CappedPaginator, page_size, paged


@dataclass(frozen=True)
class Listing:
    """What an inventory list page declares; `inventory/object_list.html` draws the rest (filters, count, export link,
    pager) and `table` the columns with their cells."""

    title: str
    noun: str
    plural: str
    list_url: str
    create_url: str
    create_label: str
    export_url: str
    search_placeholder: str
    filters: tuple[tuple[str, str, str | None], ...]  # (filter, label, placeholder); no placeholder: the form's select
    table: str


TOOLS = Listing(
    title="AI tools", noun="tool", plural="tools", list_url="inventory:tool_list",
    create_url="inventory:tool_create", create_label="Register a tool", export_url="inventory:tool_export",
    search_placeholder="Name, vendor, description",
    filters=(("kind", "Kind", None), ("environment", "Environment", None), ("status", "Status", None),
             ("owner", "Owner", "username"), ("team", "Team", "team slug")),
    table="inventory/_partials/tool_table.html",
)  # fmt: skip
IDENTITIES = Listing(
    title="Service identities", noun="identity", plural="identities", list_url="inventory:identity_list",
    create_url="inventory:identity_create", create_label="Register an identity",
    export_url="inventory:identity_export", search_placeholder="Name, provider, external id",
    filters=(("kind", "Kind", None), ("environment", "Environment", None), ("status", "Status", None),
             ("provider", "Provider", ""), ("owner", "Owner", "username"), ("tool", "Tool", "tool slug")),
    table="inventory/_partials/identity_table.html",
)  # fmt: skip


def _list_view(request, *, listing: Listing, filterset):
    # Unknown filter values show an empty list with the form's errors, not a 500.
    queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    context = {
        "listing": listing,
        "filter": filterset,
        "filter_fields": [(label, filterset.form[name], placeholder) for name, label, placeholder in listing.filters],
        "ordering": request.GET.get("ordering", ""),
        **paged(request, queryset, per_page=page_size(request), paginator=CappedPaginator),
    }
    template = "inventory/object_list.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


@portal_page
def tool_list(request):
    tools = selectors.with_finding_risk(selectors.tool_list(user=request.user), by="tool")
    filterset = filters.ToolFilter(request.GET, queryset=tools)
    return _list_view(request, listing=TOOLS, filterset=filterset)


@portal_page
def identity_list(request):
    identities = selectors.with_finding_risk(selectors.identity_list(user=request.user), by="identity")
    filterset = filters.IdentityFilter(request.GET, queryset=identities)
    return _list_view(request, listing=IDENTITIES, filterset=filterset)


@portal_page
def tool_detail(request, pk: int):
    try:
        tool = selectors.tool_detail(user=request.user, pk=pk)
    except AITool.DoesNotExist:
        raise Http404 from None
    context = {
        "tool": tool,
        "can_edit": owner_may_edit(request.user, tool),
        "findings": selectors.findings_for_tool(user=request.user, tool=tool),
        "now": timezone.now(),
        "api_base": request.build_absolute_uri("/api/v1/"),
    }
    portal_url = request.build_absolute_uri("/")
    context["gateway_config"] = gateway_config(tool=tool, portal_url=portal_url, now=context["now"])
    return render(request, "inventory/tool_detail.html", context)


@portal_page
def tool_decisions(request, pk: int):
    """htmx polling target: the tool's latest authorization decisions and this week's deny reasons."""
    tool = get_object_or_404(AITool.objects.visible_to(request.user), pk=pk)
    context = {
        "tool": tool,
        "decisions": selectors.recent_decisions(tool=tool),
        "deny_reasons": selectors.deny_reasons(tool=tool),
    }
    return render(request, "inventory/_partials/decisions_panel.html", context)


@portal_page
def identity_detail(request, pk: int):
    try:
        identity = selectors.identity_detail(user=request.user, pk=pk)
    except ServiceIdentity.DoesNotExist:
        raise Http404 from None
    can_edit = owner_may_edit(request.user, identity)
    context = {
        "identity": identity,
        "can_edit": can_edit,
        "now": timezone.now(),
        "findings": selectors.findings_for_identity(user=request.user, identity=identity),
    }
    if can_edit:
        context["credential_form"] = forms.CredentialForm()
    return render(request, "inventory/identity_detail.html", context)


def _save_form(request, form, save, *, success_message: str):
    """Validate, call the service, map its domain errors back onto the form."""
    if not form.is_valid():
        return None
    try:
        obj = save(dict(form.cleaned_data))
    except PortalError as error:
        form.add_error(error.field if error.field in form.fields else None, error.message)
        return None
    messages.success(request, success_message.format(obj=obj))
    return obj


@portal_page(role="write")
@require_http_methods(["GET", "POST"])
def tool_create(request):
    form = forms.ToolForm(request.POST or None, user=request.user)
    if request.method == "POST":
        tool = _save_form(
            request,
            form,
            lambda data: services.tool_create(actor=request.user, data=data),
            success_message="Registered {obj}.",
        )
        if tool:
            return redirect(tool)
    return render(request, "inventory/tool_form.html", {"form": form})


@portal_page(role="write")
@require_http_methods(["GET", "POST"])
def tool_edit(request, pk: int):
    tool = get_object_or_404(AITool.objects.visible_to(request.user), pk=pk)
    if not AITool.objects.editable_by(request.user).filter(pk=pk).exists():
        raise PermissionDenied
    form = forms.ToolForm(request.POST or None, instance=tool, user=request.user)
    if request.method == "POST":
        saved = _save_form(
            request,
            form,
            lambda data: services.tool_update(actor=request.user, tool=tool, data=data),
            success_message="Saved {obj}.",
        )
        if saved:
            return redirect(saved)
    return render(request, "inventory/tool_form.html", {"form": form, "tool": tool})


@portal_page(role="write")
@require_http_methods(["GET", "POST"])
def identity_create(request):
    form = forms.IdentityForm(request.POST or None, user=request.user)
    if request.method == "POST":
        identity = _save_form(
            request,
            form,
            lambda data: services.identity_create(actor=request.user, data=data),
            success_message="Registered {obj}.",
        )
        if identity:
            return redirect(identity)
    return render(request, "inventory/identity_form.html", {"form": form})


@portal_page(role="write")
@require_http_methods(["GET", "POST"])
def identity_edit(request, pk: int):
    identity = get_object_or_404(ServiceIdentity.objects.visible_to(request.user), pk=pk)
    if not ServiceIdentity.objects.editable_by(request.user).filter(pk=pk).exists():
        raise PermissionDenied
    form = forms.IdentityForm(request.POST or None, instance=identity, user=request.user)
    if request.method == "POST":
        saved = _save_form(
            request,
            form,
            lambda data: services.identity_update(actor=request.user, identity=identity, data=data),
            success_message="Saved {obj}.",
        )
        if saved:
            return redirect(saved)
    return render(request, "inventory/identity_form.html", {"form": form, "identity": identity})


@portal_page(role="write")
@require_http_methods(["POST"])
def credential_add(request, pk: int):
    identity = get_object_or_404(ServiceIdentity.objects.visible_to(request.user), pk=pk)
    if not ServiceIdentity.objects.editable_by(request.user).filter(pk=pk).exists():
        raise PermissionDenied
    form = forms.CredentialForm(request.POST)

    def save(data):
        secret = data.pop("secret")
        return services.credential_create(actor=request.user, identity=identity, data=data, secret=secret)

    if _save_form(request, form, save, success_message="Added credential {obj}."):
        return redirect(identity)
    detail = selectors.identity_detail(user=request.user, pk=pk)
    context = {"identity": detail, "can_edit": True, "now": timezone.now(), "credential_form": form}
    return render(request, "inventory/identity_detail.html", context, status=400)


@portal_page
def tool_export(request):
    filterset = filters.ToolFilter(request.GET, queryset=selectors.tool_list(user=request.user))
    queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    # Names beside the ids and slugs a spreadsheet joins on: the team's name after its slug.
    header = ["id", "name", "slug", "kind", "vendor", "owner", "team", "team_name", "environment"]
    header += ["data_classification", "status", "enforces_authorization", "identities", "created_at", "updated_at"]
    rows = (
        [
            t.pk, t.name, t.slug, t.kind, t.vendor, t.owner.username, t.team.slug if t.team else "",
            t.team.name if t.team else "", t.environment, t.data_classification, t.status, t.enforces_authorization,
            t.identity_count,
            t.created_at.isoformat(), t.updated_at.isoformat(),
        ]
        for t in queryset.iterator(chunk_size=2000)
    )  # fmt: skip
    return csv_response("ai-tools.csv", header, rows)


@portal_page
def identity_export(request):
    filterset = filters.IdentityFilter(request.GET, queryset=selectors.identity_list(user=request.user))
    queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    header = ["id", "name", "kind", "provider", "external_id", "owner", "environment", "third_party", "status"]
    header += ["tools", "tool_names", "credentials", "last_used_at", "created_at"]
    rows = (
        [
            i.pk, i.name, i.kind, i.provider, i.external_id, i.owner.username, i.environment, i.third_party,
            i.status, " ".join(t.slug for t in i.tools.all()), "; ".join(t.name for t in i.tools.all()),
            i.credential_count,
            i.last_used_at.isoformat() if i.last_used_at else "", i.created_at.isoformat(),
        ]
        for i in queryset.iterator(chunk_size=2000)
    )  # fmt: skip
    return csv_response("service-identities.csv", header, rows)
