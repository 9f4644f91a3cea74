"""Response pages (issue 18): contain or release a finding's credential from its page, and the alert deliveries with
the response measures, for security."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inventory.models import AlertDelivery, Finding
from inventory.paging import paged
from nhi_portal.decorators import portal_page
from nhi_portal.exceptions import PortalError

from . import containment
from .measures import response_measures


def _act(request, pk: int, service, done: str):
    finding = get_object_or_404(Finding.objects.visible_to(request.user), pk=pk)
    try:
        result = service(actor=request.user, finding_id=finding.pk, reason=request.POST.get("reason", ""))
    except PortalError as error:  # 400 / 409 conditions: shown on the page; PermissionDenied stays a 403
        messages.error(request, error.message)
    else:
        messages.success(request, f"{done} " + "; ".join(result["actions"]) if result["actions"] else done)
    return redirect("inventory:finding_detail", pk=finding.pk)


@portal_page(role="write")
@require_POST
def finding_contain(request, pk: int):
    """The contain button: the service decides who may (security, or the owner of a credential finding's tool)."""
    return _act(request, pk, containment.finding_contain, "Contained:")


@portal_page(role="security")
@require_POST
def finding_release(request, pk: int):
    return _act(request, pk, containment.finding_release, "Containment lifted:")


@portal_page(role="security")
def alert_deliveries(request):
    status = request.GET.get("status", "")
    deliveries = AlertDelivery.objects.order_by("-id")
    if status in AlertDelivery.Status.values:
        deliveries = deliveries.filter(status=status)
    context = {
        **paged(request, deliveries, per_page=50),
        "status": status,
        "statuses": AlertDelivery.Status.choices,
        "measures": response_measures(),
    }
    return render(request, "inventory/detection/alert_deliveries.html", context)
