"""The Sources page (security): the source kinds and their file formats, accounts and when each last synced, recent
runs, an upload that previews what a file would change and applies exactly that file, the suggested AI tools with
accept / dismiss, and the Unassigned queue. Thin: forms check shape, `sources.sync` and `sources.review` decide.

Apply never trusts a re-upload: the preview puts the file's SHA-256 in the form and Apply refuses a file whose digest
differs. The file itself is never kept between the two requests (a Kubernetes export may hold tokens): with htmx the
browser still holds it in the upload form and sends it again; without, the user picks it again.
"""

from django.contrib import messages
from django.db.models import Count, Max
from django.db.models.fields.json import KeyTextTransform
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from inventory.models import AuditEntry, SourceRun
from inventory.paging import CappedPaginator, paged
from nhi_portal.decorators import portal_page
from nhi_portal.exceptions import PortalError

from . import forms
from .sources.kinds import KINDS
from .sources.pulls import PULL_UNCHANGED
from .sources.records import SourceRejected
from .sources.review import (
    assignable_owners,
    suggestion_accept,
    suggestion_dismiss,
    suggestions_for_review,
    unassigned_assign,
    unassigned_identities,
)
from .sources.sync import source_import

TEMPLATE = "inventory/imports/sources.html"
UNASSIGNED_TEMPLATE = "inventory/imports/unassigned.html"
RECENT_RUNS = 20
PER_PAGE = 50


def _page(request, **extra) -> dict:
    """The page's context: a fixed number of queries whatever the number of runs, accounts or suggestions."""
    now = timezone.now()
    synced = list(
        SourceRun.objects.values("kind", "account")
        .annotate(last=Max("finished_at"), runs=Count("id"))
        .order_by("kind", "account")
    )
    # A pull that found nothing changed writes no run but is recorded (pulls.PULL_UNCHANGED): it counts as a sync.
    checked = (
        AuditEntry.objects.filter(action=PULL_UNCHANGED)
        .values(kind=KeyTextTransform("kind", "after"), account=KeyTextTransform("account", "after"))
        .annotate(last=Max("created_at"))
        .order_by()
    )
    read = {(row["kind"], row["account"] or ""): row["last"] for row in checked}
    known = {(row["kind"], row["account"]) for row in synced}
    synced += [{"kind": k, "account": a, "last": at, "runs": 0} for (k, a), at in read.items() if (k, a) not in known]
    synced.sort(key=lambda row: (row["kind"], row["account"]))
    for row in synced:
        row["last"] = max(row["last"], read.get((row["kind"], row["account"]), row["last"]))
        row["age"] = now - row["last"]
    accounts: dict[str, list[dict]] = {}
    for row in synced:
        accounts.setdefault(row["kind"], []).append(row)
    kinds = [
        {
            "kind": kind,
            "provider": module.PROVIDER,
            "description": module.DESCRIPTION,
            "accounts": accounts.get(kind, []),
        }
        for kind, module in KINDS.items()
    ]
    return {
        "kinds": kinds,
        "runs": SourceRun.objects.order_by("-started_at", "-pk")[:RECENT_RUNS],
        "suggestions": suggestions_for_review(),
        "unassigned": CappedPaginator(unassigned_identities(), PER_PAGE),
        "upload": forms.UploadForm(),
        "accept_form": forms.AcceptForm(),
        "dismiss_form": forms.DismissForm(),
        **extra,
    }


@require_GET
@portal_page(role="security")
def sources(request):
    return render(request, TEMPLATE, _page(request))


@require_POST
@portal_page(role="security")
def source_preview(request):
    """Import the file as a dry run and show what it would change, with an Apply button for exactly this file."""
    form = forms.UploadForm(request.POST, request.FILES)
    context = {"upload": form}
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = source_import(actor=request.user, kind=data["kind"], raw=data["file"], dry_run=True,
                                   full=data["full"], account=data["account"])  # fmt: skip
            context.update(result=result, digest=form.digest)
        except SourceRejected as exc:
            context.update(rejected=exc.errors, truncated=exc.truncated)
    status = 200 if "result" in context else 400
    if request.htmx:
        return render(request, f"{TEMPLATE}#preview", context, status=status)
    return render(request, TEMPLATE, _page(request, **context), status=status)


@require_POST
@portal_page(role="security")
def source_apply(request):
    form = forms.ApplyForm(request.POST, request.FILES)
    context = {"upload": form}
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = source_import(actor=request.user, kind=data["kind"], raw=data["file"], full=data["full"],
                                   account=data["account"])  # fmt: skip
        except SourceRejected as exc:
            context.update(rejected=exc.errors, truncated=exc.truncated)
        else:
            if result.run is None:
                messages.info(request, "Nothing changed: the source lists what it listed last time.")
            else:
                messages.success(request, f"Applied as source run #{result.run}.")
            target = reverse("inventory:sources")
            return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    if request.htmx:
        return render(request, f"{TEMPLATE}#preview", context, status=400)
    return render(request, TEMPLATE, _page(request, **context), status=400)


def _back_to_suggestions():
    return redirect(reverse("inventory:sources") + "#suggestions")


@require_POST
@portal_page(role="security")
def suggestion_accept_view(request, pk: int):
    form = forms.AcceptForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()))
        return _back_to_suggestions()
    data = form.cleaned_data
    owner = None
    if data["owner"]:
        owner = assignable_owners().filter(username=data["owner"]).first()
        if owner is None:
            messages.error(request, "No active portal user has this username.")
            return _back_to_suggestions()
    try:
        tool = suggestion_accept(
            actor=request.user, suggestion_id=pk, owner=owner, slug=data["slug"], environment=data["environment"],
            data_classification=data["data_classification"],
        )  # fmt: skip
    except PortalError as error:
        messages.error(request, error.message)
        return _back_to_suggestions()
    messages.success(request, f"Registered {tool.name} and bound its identities.")
    return redirect(tool.get_absolute_url())


@require_POST
@portal_page(role="security")
def suggestion_dismiss_view(request, pk: int):
    form = forms.DismissForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why this is not an AI tool to register.")
        return _back_to_suggestions()
    try:
        suggestion = suggestion_dismiss(actor=request.user, suggestion_id=pk, reason=form.cleaned_data["reason"])
    except PortalError as error:
        messages.error(request, error.message)
        return _back_to_suggestions()
    messages.success(request, f"Dismissed {suggestion.name}.")
    return _back_to_suggestions()


@require_http_methods(["GET", "POST"])
@portal_page(role="security")
def unassigned(request):
    """The queue (GET), or assign owners to the checked identities (POST), all or none."""
    form = forms.AssignForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            owner = assignable_owners().filter(username=form.cleaned_data["owner"]).first()
            if owner is None:
                form.add_error("owner", "No active portal user has this username.")
            else:
                try:
                    count = unassigned_assign(actor=request.user, identity_ids=form.cleaned_data["identities"],
                                              owner=owner)  # fmt: skip
                except PortalError as error:
                    form.add_error(error.field if error.field in form.fields else None, error.message)
                else:
                    messages.success(request, f"Assigned {count} identit{'y' if count == 1 else 'ies'} to {owner}.")
                    return redirect("inventory:unassigned")
        status = 400
    context = {"form": form, **paged(request, unassigned_identities(), per_page=PER_PAGE, paginator=CappedPaginator)}
    return render(request, UNASSIGNED_TEMPLATE, context, status=status)
