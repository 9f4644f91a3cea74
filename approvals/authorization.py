"""The pre-execution authorization decision: may this tool, acting through this identity, use this scope on this
resource for this human, now? Deny by default; every decision is recorded as an AccessEvent.

Input is checked here; the rules themselves run in the database, in the statement that records the decision
(`authorization_store`), so a decision is one round trip and a gateway can afford to ask before every action.
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from inventory.models import AccessEvent
from inventory.resources import canonical_resource

from .authorization_store import answer_questions, decide_and_record, insert_event

MAX_REF = 200
MAX_RESOURCE = 500

# Every reason code. Machine-readable and stable: gateways branch on them. `authorization_store.rules` is the
# order in which they are checked.
REASONS = (
    "invalid_request",
    "unknown_tool",
    "gateway_not_allowed_for_tool",
    "tool_inactive",
    "unknown_identity",
    "identity_not_bound_to_tool",
    "identity_disabled",
    "credential_compromised",
    "credential_revoked",
    "unknown_user",
    "user_not_allowed_for_tool",
    "unknown_scope",
    "invalid_resource",
    "no_active_grant",
    "grant_unapproved",
    "grant_below_policy",
    "grant_revoked",
    "grant_expired",
    "resource_outside_grant",
    "request_id_reused",
    "allowed",
)


@dataclass(frozen=True)
class QuestionField:
    """A field of the question a gateway asks. `AuthorizationQuery` reads and checks a body by these, and the API
    schema of POST /authorize/ is generated from them (`approvals.api.authorize`): one declaration, two readers. A
    DRF serializer would check the same in about 200 us a call against 11 us here, on the hottest endpoint."""

    name: str
    max_length: int
    help_text: str
    # Required, and an id (a positive integer) or a natural key (a non-empty string); otherwise an optional string.
    reference: bool = False
    problem: str = ""  # the message for an optional string that is not one, or too long

    @property
    def message(self) -> str:
        return self.problem or f"a string of at most {self.max_length} characters"


QUESTION = (
    QuestionField("tool", MAX_REF, "The AI tool about to act: its id, or its slug.", reference=True),
    QuestionField("identity", MAX_REF, "The identity it acts through: id or name.", reference=True),
    QuestionField("on_behalf_of", MAX_REF, "The human it acts for: id or username.", reference=True),
    QuestionField("scope", MAX_REF, "The scope the action needs: id or name.", reference=True),
    QuestionField("resource", MAX_RESOURCE, "The resource acted on, e.g. project:payments/api."),
    QuestionField("request_id", 128, "The gateway's id for this call; a repeat is decided afresh, see `replay_of`."),
    QuestionField(
        "credential", 80, "Id or fingerprint of the credential it will use.", problem="a credential fingerprint"
    ),
    QuestionField("agent", MAX_REF, "The agent acting for the human, when the gateway knows it (recorded only)."),
    QuestionField("action", MAX_REF, "What the gateway was asked to run, e.g. the MCP tool name (recorded only)."),
)


@dataclass
class AuthorizationQuery:
    tool: Any
    identity: Any
    on_behalf_of: Any
    scope: Any
    resource: Any = ""
    request_id: Any = ""
    credential: Any = ""
    agent: Any = ""
    action: Any = ""

    @classmethod
    def from_body(cls, body: Any) -> "AuthorizationQuery":
        """The question in a parsed JSON body, whatever it holds (a list, a string, wrong types): what is malformed
        stays as sent for `problems` to name; an optional field that is absent or null is empty."""
        if not isinstance(body, dict):
            body = {}
        values = {}
        for field_ in QUESTION:
            value = body.get(field_.name)
            values[field_.name] = value if field_.reference or value is not None else ""
        return cls(**values)

    def problems(self) -> dict[str, str]:
        problems = {}
        for field_ in QUESTION:
            value = getattr(self, field_.name)
            if not field_.reference:
                if not isinstance(value, str) or len(value) > field_.max_length:
                    problems[field_.name] = field_.message
            elif value in (None, "") or isinstance(value, bool) or not isinstance(value, str | int):
                problems[field_.name] = "required: an id or a natural key"
            elif isinstance(value, str) and len(value) > field_.max_length:
                problems[field_.name] = f"at most {field_.max_length} characters"
            elif isinstance(value, int) and not 0 < value < 2**63:
                problems[field_.name] = "not a valid id"
            # Neither database can store NUL or a lone surrogate (JSON allows "\ud800"); such input is malformed,
            # not a reason to fail.
            if isinstance(value, str) and "\x00" in value:
                problems[field_.name] = "must not contain NUL characters"
            elif isinstance(value, str) and _storable(value) != value:
                problems[field_.name] = "must be valid Unicode text"
        return problems


@dataclass
class Decision:
    decision: str
    reason: str
    event_id: int
    grant_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    replay_of: int | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == AccessEvent.Decision.ALLOW


def _storable(text: str) -> str:
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _ref(value) -> str:
    return "" if value is None else _storable(str(value))[:MAX_REF]


def _same_request(event: dict, refs: dict[str, str], resource: str) -> bool:
    asked = (refs["tool_ref"], refs["identity_ref"], refs["on_behalf_of_ref"], refs["scope_ref"], resource)
    return asked == (event["tool_ref"], event["identity_ref"], event["on_behalf_of_ref"], event["scope_ref"],
                     event["resource"])  # fmt: skip


def _first_answer(request_id: str, source: str) -> dict | None:
    """The first decision recorded under this request id. On PostgreSQL a request id is unique within a month's
    partition (inventory/audit/partitions.py), so a retry that crosses the turn of a month is recorded as a first
    request of the new month; the oldest is still the one named."""
    fields = ("id", "tool_ref", "identity_ref", "on_behalf_of_ref", "scope_ref", "resource")
    events = AccessEvent.objects.filter(source=source, kind=AccessEvent.Kind.DECISION, request_id=request_id)
    return events.order_by("pk").values(*fields).first()


def authorize(*, query: AuthorizationQuery, source: str, token=None) -> Decision:
    """Decide and record. A `request_id` is the caller's (the gateway account's) and names one question.

    Idempotency never outlives the facts: a repeated request id is decided afresh and recorded as an event of its
    own (`replay_of` names the first), so a retry after a revocation, an expiry, a policy change or from a token
    limited to other tools gets today's answer, never the old allow. A request id that comes back with a different
    question is refused (`request_id_reused`), and recorded too.
    """
    errors = query.problems()
    now = timezone.now()
    source = source[:150]
    refs = {
        "tool_ref": _ref(query.tool),
        "identity_ref": _ref(query.identity),
        "on_behalf_of_ref": _ref(query.on_behalf_of)[:150],
        "scope_ref": _ref(query.scope),
    }
    sent = _storable(query.resource)[:MAX_RESOURCE] if isinstance(query.resource, str) else ""
    # Matched and recorded in its canonical form; a resource that has none (a traversal) is decided on as sent.
    canonical = canonical_resource(sent) if sent else ""
    resource = sent if canonical is None else canonical
    if errors:
        return _record_invalid(source, resource, refs, errors, now, "invalid_request", _context(query))
    request_id, replay_of = query.request_id, None
    for _ in range(2):
        recorded = decide_and_record(
            tool=query.tool,
            identity=query.identity,
            user=query.on_behalf_of,
            scope=query.scope,
            resource=resource,
            resource_ok=canonical is not None,
            credential=query.credential,
            token_id=None if token is None else token.pk,
            source=source,
            request_id=request_id,
            refs=refs,
            context=_context(query),
            now=now,
        )
        if recorded is not None:
            event_id, decision, reason, grant_id = recorded
            return Decision(decision, reason, event_id, grant_id, replayed=replay_of is not None, replay_of=replay_of)
        # The request id was recorded before (a retry, or two deliveries racing, the other one committed first).
        first = _first_answer(request_id, source)
        replay_of = first["id"] if first else None
        if first is not None and not _same_request(first, refs, resource):
            errors = {"request_id": "already used for a different request"}
            decision = _record_invalid(source, resource, refs, errors, now, "request_id_reused", _context(query))
            decision.replayed, decision.replay_of = True, replay_of
            return decision
        request_id = ""
    raise RuntimeError("a decision without a request id cannot conflict")  # pragma: no cover


def _context(query: AuthorizationQuery) -> dict[str, str | None]:
    """The agent and the action, recorded as sent (cut to fit); absent is NULL, so they cost a sealed leaf nothing."""
    return {
        name: _storable(value)[:MAX_REF] if isinstance(value, str) and value else None
        for name, value in (("agent", query.agent), ("action", query.action))
    }


def _record_invalid(source: str, resource: str, refs: dict, errors: dict, now, reason: str, context) -> Decision:
    event = AccessEvent(
        occurred_at=now, kind=AccessEvent.Kind.DECISION, source=source, resource=resource,
        decision=AccessEvent.Decision.DENY, reason=reason, **refs, **context,
    )  # fmt: skip
    insert_event(event)
    return Decision(event.decision, event.reason, event.pk, None, errors=errors)


# Tool listings ------------------------------------------------------------------------------------------------------

MAX_LISTING = 200
LISTED = "listed"


@dataclass
class Listing:
    event_id: int
    answers: list[dict]


class ListingInvalid(ValueError):
    def __init__(self, errors: dict):
        super().__init__("invalid listing question")
        self.errors = errors


def _listing_problems(body: Any) -> dict:
    if not isinstance(body, dict):
        return {"non_field_errors": "a JSON object"}
    query = AuthorizationQuery.from_body({**body, "scope": "-"})
    problems = {name: message for name, message in query.problems().items() if name not in ("scope", "request_id")}
    checks = body.get("checks")
    if not isinstance(checks, list) or not 1 <= len(checks) <= MAX_LISTING:
        problems["checks"] = f"a list of 1 to {MAX_LISTING} objects with a scope and a resource"
        return problems
    for index, check in enumerate(checks):
        item = AuthorizationQuery.from_body({"tool": "-", "identity": "-", "on_behalf_of": "-", **_only(check)})
        bad = [f"{k}: {v}" for k, v in item.problems().items() if k in ("scope", "resource")]
        bad += [p for p in (_any_resource_problem(check),) if p]
        if not isinstance(check, dict) or bad:
            problems[f"checks[{index}]"] = "; ".join(bad) or "an object"
    return problems


def _only(check: Any) -> dict:
    return {k: check.get(k) for k in ("scope", "resource")} if isinstance(check, dict) else {}


def _any_resource_problem(check: Any) -> str:
    # `type(...) is bool`: 0 and 1 compare equal to False and True, and are not booleans.
    if isinstance(check, dict) and "any_resource" in check and type(check["any_resource"]) is not bool:
        return "any_resource: true or false"
    if isinstance(check, dict) and "resource" in check and not isinstance(check["resource"], str):
        return "resource: a string"
    return ""


def authorize_listing(*, body: Any, source: str, token=None) -> Listing:
    """Which of these scope and resource pairs would be allowed now, for one tool, identity and human?

    A gateway asks this to list only the tools a human may call. A check with `any_resource` asks whether some
    resource could be allowed (a live, approved grant for the scope, whatever its constraint): the call's own
    resource is known only when it is made. Each pair is decided by the rules `authorize`
    uses, and nothing is granted: the tool call itself is asked about again, and recorded, when it happens. The
    listing is recorded as one event (kind `list`) with every answer in `detail`."""
    errors = _listing_problems(body)
    if errors:
        raise ListingInvalid(errors)
    query = AuthorizationQuery.from_body({**body, "scope": "-"})
    now = timezone.now()
    questions, asked = [], []
    for check in body["checks"]:
        any_resource = check.get("any_resource") is True
        sent = "" if any_resource else _storable(check.get("resource") or "")[:MAX_RESOURCE]
        canonical = canonical_resource(sent) if sent else ""
        resource = sent if canonical is None else canonical
        questions.append((check["scope"], resource, canonical is not None, any_resource))
        asked.append(_ref(check["scope"]))
    rows = answer_questions(
        tool=query.tool,
        identity=query.identity,
        user=query.on_behalf_of,
        questions=questions,
        token_id=None if token is None else token.pk,
        now=now,
    )
    answers = [
        {
            "scope": scope,
            "resource": resource,
            "decision": AccessEvent.Decision.ALLOW if reason == "allowed" else AccessEvent.Decision.DENY,
            "reason": reason,
            "grant": grant if reason == "allowed" else None,
        }
        for scope, (_, resource, *_), (reason, grant, *_) in zip(asked, questions, rows, strict=True)
    ]
    _, _, tool_id, identity_id, user_id = rows[0]
    any_allowed = any(a["decision"] == AccessEvent.Decision.ALLOW for a in answers)
    event = AccessEvent(
        occurred_at=now,
        kind=AccessEvent.Kind.LISTING,
        source=source[:150],
        tool_id=tool_id,
        tool_ref=_ref(query.tool),
        identity_id=identity_id,
        identity_ref=_ref(query.identity),
        on_behalf_of_id=user_id,
        on_behalf_of_ref=_ref(query.on_behalf_of)[:150],
        decision=AccessEvent.Decision.ALLOW if any_allowed else AccessEvent.Decision.DENY,
        reason=LISTED,
        detail={"answers": [[a["scope"], a["resource"], a["reason"]] for a in answers]},
        **_context(query),
    )
    insert_event(event)
    return Listing(event.pk, answers)
