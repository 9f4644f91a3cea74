"""Usage observed outside the portal (cloud logs, connectors) and the roll-up of last-used times.

Allowed use updates grants', identities' and credentials' `last_used_at`, but never one UPDATE per event: a job
reads new events past a watermark and applies the maximum per row in one UPDATE per table.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inventory.audit.record import GRACE
from inventory.changes import changes_record_query
from inventory.models import (
    AccessEvent,
    AITool,
    Credential,
    Scope,
    ScopeGrant,
    ServiceIdentity,
    ToolIdentity,
    UsageWatermark,
)
from inventory.resources import canonical_resource, resource_allowed
from nhi_portal.exceptions import PortalError

MAX_BATCH = 1000
# A tool listing records what a human could call; it is not use, and refreshes no last-used time.
USE = ~Q(kind=AccessEvent.Kind.LISTING) & Q(decision=AccessEvent.Decision.ALLOW)
MAX_FUTURE = timedelta(minutes=5)
OUTCOMES = ("ok", "error")
ROLLUP = "usage"


class IngestError(PortalError):
    def __init__(self, errors: list[dict]):
        super().__init__("The batch was rejected; nothing was stored.", field="errors")
        self.errors = errors


class IngestRefused(IngestError):
    """Well-formed, but about tools or identities the reporting token may not speak for."""


@dataclass(frozen=True)
class IngestResult:
    received: int
    created: int

    @property
    def duplicates(self) -> int:
        return self.received - self.created


def _text(row: dict, key: str, limit: int, errors: list, index: int, *, required: bool = False) -> str:
    value = row.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit or (required and not value) or "\x00" in value:
        need = "required, " if required else ""
        errors.append({"row": index, "field": key, "message": f"{need}a string of at most {limit} characters"})
        return ""
    return value


def _choice(row: dict, key: str, choices: tuple[str, ...], errors: list, index: int) -> str | None:
    value = row.get(key)
    if value in (None, ""):
        return None
    if value not in choices:
        errors.append({"row": index, "field": key, "message": f"one of {', '.join(choices)}"})
        return None
    return value


def _whole(row: dict, key: str, most: int, errors: list, index: int) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        errors.append({"row": index, "field": key, "message": f"a whole number from 0 to {most}"})
        return None
    return value


def _unlinked(rows: list[dict], source: str, refs: dict[str, dict]) -> list[dict]:
    """Rows naming a decision they do not follow: usage may say which allow let it run, but only an allow this same
    account was given, for the same tool, identity, human, scope and resource, and only once. Otherwise a gateway
    token could file one allow as cover for other work, or for someone else's."""
    named = [r["decision"] for r in rows if r["decision"] is not None]
    if not named:
        return []
    fields = ("pk", "tool_id", "identity_id", "on_behalf_of_id", "scope_id", "resource")
    decisions = {
        row[0]: row[1:]
        for row in AccessEvent.objects.filter(
            pk__in=named, kind=AccessEvent.Kind.DECISION, decision=AccessEvent.Decision.ALLOW, source=source
        ).values_list(*fields)
    }
    followed = set(
        AccessEvent.objects.filter(kind=AccessEvent.Kind.OBSERVED, decision_event_id__in=named).values_list(
            "decision_event_id", flat=True
        )
    )
    errors, seen = [], set()
    for index, r in enumerate(rows):
        if r["decision"] is None:
            continue
        asked = decisions.get(r["decision"])
        if r["decision"] in followed or r["decision"] in seen:
            errors.append({"row": index, "field": "decision", "message": "this allow is already followed by a usage"})
        elif asked is None or asked != (
            refs["tools"].get(r["tool"]) if r["tool"] else asked[0],
            refs["identities"].get(r["identity"]),
            refs["users"].get(r["user"]),
            refs["scopes"].get(r["scope"]),
            canonical_resource(r["resource"]) if r["resource"] else "",
        ):
            message = "not an allow given to this account for this tool, identity, human, scope and resource"
            errors.append({"row": index, "field": "decision", "message": message})
        seen.add(r["decision"])
    return errors


def _outside_limit(rows: list[dict], tools: dict, identities: dict, tools_allowed: frozenset[int]) -> list[dict]:
    """The rows a token limited to some tools may not report: as for /authorize/, it speaks only for the tools it
    fronts, and here only for identities bound to them. Otherwise a gateway for one tool could refresh another
    tool's last-used times and hide its stale and unused findings."""
    bound = set(
        ToolIdentity.objects.filter(tool_id__in=tools_allowed, identity_id__in=identities.values()).values_list(
            "tool_id", "identity_id"
        )
    )
    errors = []
    for index, r in enumerate(rows):
        tool_id = tools.get(r["tool"])
        if not r["tool"]:
            errors.append({"row": index, "field": "tool", "message": "required from a token limited to some tools"})
        elif tool_id not in tools_allowed:
            errors.append({"row": index, "field": "tool", "message": "not a tool this token fronts"})
        elif (tool_id, identities.get(r["identity"])) not in bound:
            errors.append({"row": index, "field": "identity", "message": f"not bound to {r['tool']}"})
    return errors


def _moment(value):
    """An ISO 8601 time, or None; a well-shaped impossible one (month 13, 25 o'clock) is None too, not a 500."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
        # PostgreSQL stores offsets up to +-15:59 and Python parses up to +-23:59: the instant, in UTC, fits both.
        return moment.astimezone(UTC) if moment is not None and moment.tzinfo else moment
    except (ValueError, OverflowError):
        return None


def events_ingest(*, source: str, events: list, tools_allowed: frozenset[int] | None = None) -> IngestResult:
    """Store a batch of observed events, all or nothing; an event id seen before from this source is skipped.

    `tools_allowed`: the tool ids a limited gateway token fronts, None for no limit. The caller resolves it, since
    the limit belongs to approvals, which inventory does not import.
    """
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
        raise IngestError([{"row": None, "field": "events", "message": f"a list of 1 to {MAX_BATCH} events"}])
    errors: list[dict] = []
    rows = []
    now = timezone.now()
    for index, raw in enumerate(events):
        if not isinstance(raw, dict):
            errors.append({"row": index, "field": None, "message": "each event is an object"})
            continue
        occurred = _moment(raw.get("occurred_at"))
        if occurred is None or timezone.is_naive(occurred) or occurred > now + MAX_FUTURE:
            errors.append({"row": index, "field": "occurred_at", "message": "an ISO 8601 time with zone, not future"})
        row = {
            "request_id": _text(raw, "event_id", 128, errors, index, required=True),
            "tool": _text(raw, "tool", 200, errors, index),
            "identity": _text(raw, "identity", 200, errors, index, required=True),
            "user": _text(raw, "on_behalf_of", 150, errors, index),
            "scope": _text(raw, "scope", 200, errors, index),
            "resource": _text(raw, "resource", 500, errors, index),
            "credential": _text(raw, "credential", 80, errors, index),
            "agent": _text(raw, "agent", 200, errors, index) or None,
            "action": _text(raw, "action", 200, errors, index) or None,
            "outcome": _choice(raw, "outcome", OUTCOMES, errors, index),
            "duration_ms": _whole(raw, "duration_ms", 2**31 - 1, errors, index),
            "decision": _whole(raw, "decision", 2**63 - 1, errors, index),
            "occurred_at": occurred,
        }
        rows.append(row)
    ids = [r["request_id"] for r in rows]
    if len(set(ids)) != len(ids):
        errors.append({"row": None, "field": "event_id", "message": "event ids repeat within the batch"})
    if errors:
        raise IngestError(errors[:200])

    tools = dict(AITool.objects.filter(slug__in={r["tool"] for r in rows}).values_list("slug", "pk"))
    identities = dict(ServiceIdentity.objects.filter(name__in={r["identity"] for r in rows}).values_list("name", "pk"))
    users = dict(get_user_model().objects.filter(username__in={r["user"] for r in rows}).values_list("username", "pk"))
    if tools_allowed is not None and (refused := _outside_limit(rows, tools, identities, tools_allowed)):
        raise IngestRefused(refused[:200])
    scopes = dict(Scope.objects.filter(name__in={r["scope"] for r in rows}).values_list("name", "pk"))
    refs = {"tools": tools, "identities": identities, "users": users, "scopes": scopes}
    if unlinked := _unlinked(rows, source[:150], refs):
        raise IngestError(unlinked[:200])
    # Fingerprints are unique per identity only: a credential counts as used only on the identity reported with it.
    credentials = {
        (identity, fingerprint): pk
        for identity, fingerprint, pk in Credential.objects.filter(
            identity_id__in=identities.values(), fingerprint__in={r["credential"] for r in rows if r["credential"]}
        ).values_list("identity_id", "fingerprint", "pk")
    }
    # A grant is used only by the tool it is for (or by any tool, if it names none), on a resource it covers.
    grants: dict[tuple, list] = {}
    for identity, scope, tool, pk, constraint in ScopeGrant.objects.filter(
        identity_id__in=identities.values(), scope_id__in=scopes.values(), status="active"
    ).values_list("identity_id", "scope_id", "tool_id", "pk", "resource_constraint"):
        grants.setdefault((identity, scope), []).append((tool, pk, constraint))
    objects = []
    for r in rows:
        identity_id, scope_id, tool_id = identities.get(r["identity"]), scopes.get(r["scope"]), tools.get(r["tool"])
        grant_id = next(
            (
                pk
                for tool, pk, constraint in grants.get((identity_id, scope_id), [])
                if tool in (None, tool_id) and resource_allowed(constraint, r["resource"])
            ),
            None,
        )
        objects.append(
            AccessEvent(
                occurred_at=r["occurred_at"],
                kind=AccessEvent.Kind.OBSERVED,
                source=source[:150],
                request_id=r["request_id"],
                tool_id=tool_id,
                tool_ref=r["tool"],
                identity_id=identity_id,
                identity_ref=r["identity"],
                credential_id=credentials.get((identity_id, r["credential"])),
                on_behalf_of_id=users.get(r["user"]),
                on_behalf_of_ref=r["user"],
                scope_id=scope_id,
                scope_ref=r["scope"],
                resource=r["resource"],
                decision=AccessEvent.Decision.ALLOW,
                reason="observed",
                grant_id=grant_id,
                agent=r["agent"],
                action=r["action"],
                outcome=r["outcome"],
                duration_ms=r["duration_ms"],
                decision_event_id=r["decision"],
            )
        )
    with transaction.atomic():
        seen = set(
            AccessEvent.objects.filter(source=source[:150], request_id__in=ids).values_list("request_id", flat=True)
        )
        fresh = [o for o in objects if o.request_id not in seen]
        AccessEvent.objects.bulk_create(fresh, batch_size=500, ignore_conflicts=True)
    return IngestResult(received=len(rows), created=len(fresh))


def _latest_use(model_field: str, lo: int, hi: int):
    used = (
        AccessEvent.objects.filter(USE, **{model_field: OuterRef("pk")}, pk__gt=lo, pk__lte=hi)
        .order_by()
        .values(model_field)
        .annotate(latest=Max("occurred_at"))
        .values("latest")
    )
    return Subquery(used)


def usage_rollup(*, batch: int = 200_000, now: datetime | None = None) -> int:
    """Apply new allowed events to last-used times; resumes from its watermark, safe to run concurrently.

    Like sealing, it stops short of events recorded within the last GRACE: an event whose transaction took its id
    early but committed late is then already visible when the watermark passes its id, instead of being skipped for
    ever. The window ends before the first young event after the watermark, so the rolled-up range stays contiguous.
    """
    cutoff = (now or timezone.now()) - GRACE
    total = 0
    while True:
        with transaction.atomic():
            mark, _ = UsageWatermark.objects.select_for_update().get_or_create(name=ROLLUP)
            lo = mark.last_event_id
            unread = AccessEvent.objects.filter(pk__gt=lo)
            young = unread.filter(recorded_at__gt=cutoff).order_by("pk").values_list("pk", flat=True)[:1]
            settled = unread.filter(pk__lt=young[0]) if young else unread
            hi = settled.order_by("pk").values_list("pk", flat=True)[batch - 1 : batch]
            hi = hi[0] if hi else settled.aggregate(m=Max("pk"))["m"]
            if hi is None:
                return total
            window = Q(pk__gt=lo, pk__lte=hi) & USE
            for model, column in ((ScopeGrant, "grant"), (ServiceIdentity, "identity"), (Credential, "credential")):
                touched = AccessEvent.objects.filter(window, **{f"{column}__isnull": False}).values(column)
                latest = _latest_use(column, lo, hi)
                model.objects.filter(pk__in=touched).update(
                    last_used_at=Greatest(Coalesce(F("last_used_at"), latest), latest)
                )
            # issue 18: what last use changed is re-checked by the detectors that read it, on those subjects only
            used = AccessEvent.objects.filter(window)
            changes_record_query(topic="usage", key_type="identity", rows=used, field="identity")
            changes_record_query(topic="usage", key_type="tool", rows=used, field="tool")
            total += AccessEvent.objects.filter(pk__gt=lo, pk__lte=hi).count()
            mark.last_event_id = hi
            mark.save(update_fields=["last_event_id", "updated_at"])
