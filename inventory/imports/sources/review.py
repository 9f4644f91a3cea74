"""Security's review of what discovery found: suggested AI tools (accept or dismiss) and the Unassigned queue (give
discovered identities their owners). Reads and writes for the API and the Sources page alike.

Each write is one transaction with its audit entries; a refused write (bad input, a decision already taken) raises
before anything changed. A suggestion nobody decided on stays an `ai_tool_unregistered` finding for each of its
identities; accepting or dismissing it clears them (the targeted run queued here, or the next scan).
"""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.text import slugify

from inventory.audit.record import ObjectChange, audit_changes, audit_record
from inventory.changes import changes_record
from inventory.choices import DataClassification, Environment, IdentityStatus
from inventory.models import AITool, AIToolSuggestion, ServiceIdentity
from inventory.services import tool_create
from nhi_portal import roles
from nhi_portal.exceptions import Conflict, PortalError

from .sync import UNASSIGNED

User = get_user_model()

MAX_REASON = 2000
MAX_ASSIGN = 1000
# The identities a suggestion list shows per suggestion; the count says how many there are.
SHOWN_IDENTITIES = 5


def _require_security(actor) -> None:
    if not roles.is_security(actor):
        raise PermissionDenied("Only security can review what discovery found.")


# Suggested AI tools


def suggestions_for_review(
    *, status: str | None = AIToolSuggestion.Status.OPEN, limit: int = 100
) -> list[AIToolSuggestion]:
    """Suggestions with their identity count and, as `shown`, their first few identities: two queries however many
    suggestions and identities there are (the first few per suggestion by a window function, not all of them)."""
    rows = AIToolSuggestion.objects.select_related("tool", "decided_by").annotate(identity_count=Count("identities"))
    if status:
        rows = rows.filter(status=status)
    suggestions = list(rows.order_by("name", "pk")[:limit])
    through = AIToolSuggestion.identities.through
    first = (
        through.objects.filter(aitoolsuggestion_id__in=[s.pk for s in suggestions])
        .annotate(n=Window(RowNumber(), partition_by=F("aitoolsuggestion_id"),
                           order_by=[F("serviceidentity__name").asc(), F("serviceidentity_id").asc()]))
        .filter(n__lte=SHOWN_IDENTITIES)
        .order_by("aitoolsuggestion_id", "n")
        .values_list("aitoolsuggestion_id", "serviceidentity_id", "serviceidentity__name", "serviceidentity__provider")
    )  # fmt: skip
    shown: dict[int, list[dict[str, Any]]] = {}
    for suggestion_id, pk, name, provider in first if suggestions else ():
        shown.setdefault(suggestion_id, []).append({"id": pk, "name": name, "provider": provider})
    for suggestion in suggestions:
        suggestion.shown = shown.get(suggestion.pk, [])
    return suggestions


def _open_suggestion(pk: int) -> AIToolSuggestion:
    suggestion = AIToolSuggestion.objects.select_for_update().filter(pk=pk).first()
    if suggestion is None:
        raise PortalError("No such suggestion.", field="suggestion")
    if suggestion.status != AIToolSuggestion.Status.OPEN:
        raise Conflict(f"This suggestion was already {suggestion.status}.", field="suggestion")
    return suggestion


def _free_slug(name: str) -> str:
    base = slugify(name)[:100] or "ai-tool"
    taken = set(AITool.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def suggestion_accept(
    *,
    actor,
    suggestion_id: int,
    owner=None,
    slug: str = "",
    environment: str = Environment.PROD,
    data_classification: str = DataClassification.INTERNAL,
) -> AITool:
    """Register the suggested tool (owned by `owner`, security by default) and bind the suggestion's identities to
    it, through the tool service (validation, audit, detection); mark the suggestion accepted, audited."""
    _require_security(actor)
    suggestion = _open_suggestion(suggestion_id)
    if slug and AITool.objects.filter(slug=slug).exists():
        raise PortalError("An AI tool with this slug exists already.", field="slug")
    if owner is not None and not owner.is_active:
        raise PortalError("The owner must be an active portal user.", field="owner")
    identities = list(suggestion.identities.exclude(status=IdentityStatus.RETIRED).order_by("pk"))
    tool = tool_create(
        actor=actor,
        data={
            "name": suggestion.name[:200],
            "slug": slug or _free_slug(suggestion.name),
            "kind": suggestion.tool_kind,
            "vendor": suggestion.vendor,
            "environment": environment,
            "data_classification": data_classification,
            "description": f"Registered from a discovery suggestion (catalog {suggestion.catalog_version}).",
            "owner": owner or actor,
            "identities": identities,
        },
    )
    before = {"status": suggestion.status, "tool": None}
    suggestion.status, suggestion.tool = AIToolSuggestion.Status.ACCEPTED, tool
    suggestion.decided_by, suggestion.decided_at = actor, timezone.now()
    suggestion.save(update_fields=["status", "tool", "decided_by", "decided_at"])
    after = {"status": suggestion.status, "tool": tool.pk, "identities": [i.pk for i in identities]}
    audit_record(actor=actor, action="ai_suggestion.accepted", obj=suggestion, before=before, after=after)
    changes_record(topics=["identity"], identities=suggestion.identities.values_list("pk", flat=True))
    return tool


@transaction.atomic
def suggestion_dismiss(*, actor, suggestion_id: int, reason: str) -> AIToolSuggestion:
    """Close a suggestion without registering anything; the reason is required and kept, audited."""
    _require_security(actor)
    reason = (reason or "").strip()
    if not reason:
        raise PortalError("Say why this is not an AI tool to register.", field="reason")
    if len(reason) > MAX_REASON:
        raise PortalError(f"At most {MAX_REASON} characters.", field="reason")
    suggestion = _open_suggestion(suggestion_id)
    before = {"status": suggestion.status}
    suggestion.status, suggestion.reason = AIToolSuggestion.Status.DISMISSED, reason
    suggestion.decided_by, suggestion.decided_at = actor, timezone.now()
    suggestion.save(update_fields=["status", "reason", "decided_by", "decided_at"])
    audit_record(actor=actor, action="ai_suggestion.dismissed", obj=suggestion, before=before,
                 after={"status": suggestion.status, "reason": reason})  # fmt: skip
    changes_record(topics=["identity"], identities=suggestion.identities.values_list("pk", flat=True))
    return suggestion


# The Unassigned queue


def unassigned_identities() -> QuerySet[ServiceIdentity]:
    """Identities discovered without an owner the portal knows: held by the inactive `unassigned` account."""
    return (
        ServiceIdentity.objects.filter(owner__username=UNASSIGNED)
        .annotate(source_count=Count("sources", filter=Q(sources__object_type="identity")))
        .order_by("provider", "name", "pk")
    )


def assignable_owners() -> QuerySet:
    """Who may own an identity: active portal users (not the queue's own account)."""
    return User.objects.filter(is_active=True).exclude(username=UNASSIGNED).order_by("username")


@transaction.atomic
def unassigned_assign(*, actor, identity_ids: Sequence[Any], owner) -> int:
    """Give these identities from the Unassigned queue to `owner`, all or none; one audit entry per identity."""
    _require_security(actor)
    if owner is None or not owner.is_active or owner.username == UNASSIGNED:
        raise PortalError("The owner must be an active portal user.", field="owner")
    if not identity_ids:
        raise PortalError("Pick at least one identity.", field="identities")
    if len(identity_ids) > MAX_ASSIGN:
        raise PortalError(f"At most {MAX_ASSIGN} identities at a time.", field="identities")
    if any(isinstance(pk, bool) or not isinstance(pk, int) for pk in identity_ids):
        raise PortalError("Identities are given by their numeric id.", field="identities")
    wanted = set(identity_ids)
    rows = list(
        ServiceIdentity.objects.select_for_update()
        .filter(pk__in=wanted, owner__username=UNASSIGNED)
        .order_by("pk")
        .values_list("pk", "name", "owner_id")
    )
    if len(rows) != len(wanted):
        missing = sorted(wanted - {pk for pk, _, _ in rows})
        raise PortalError(f"Not in the Unassigned queue: {', '.join(map(str, missing[:20]))}.", field="identities")
    now = timezone.now()
    ServiceIdentity.objects.filter(pk__in=wanted).update(owner=owner, updated_at=now)
    audit_changes(
        actor=actor,
        changes=[
            ObjectChange(action="identity.owner_assigned", object_type="inventory.serviceidentity", object_id=pk,
                         label=name, before={"owner": old}, after={"owner": owner.pk})
            for pk, name, old in rows
        ],
        comment=f"Assigned from the Unassigned queue to {owner.get_username()}.",
    )  # fmt: skip
    changes_record(topics=["identity"], identities=wanted)
    return len(rows)


def suggestion_data(suggestion: AIToolSuggestion) -> dict[str, Any]:
    """A suggestion as the API shows it (from `suggestions_for_review`: no query per suggestion)."""
    return {
        "id": suggestion.pk,
        "catalog_key": suggestion.catalog_key,
        "catalog_version": suggestion.catalog_version,
        "name": suggestion.name,
        "vendor": suggestion.vendor,
        "tool_kind": suggestion.tool_kind,
        "status": suggestion.status,
        "first_seen_at": suggestion.first_seen_at,
        "identity_count": suggestion.identity_count,
        "identities": suggestion.shown,
        "decided_by": suggestion.decided_by.get_username() if suggestion.decided_by else None,
        "decided_at": suggestion.decided_at,
        "reason": suggestion.reason,
        "tool": {"id": suggestion.tool.pk, "slug": suggestion.tool.slug} if suggestion.tool else None,
    }
