"""Reads shared by pages, the API and exports. Each owns its joins and annotations so nothing lazy-loads."""

from datetime import timedelta

from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from nhi_portal import roles

from .choices import CredentialKind
from .models import (
    AccessEvent,
    AITool,
    Credential,
    Finding,
    FindingStatus,
    ScopeGrant,
    ServiceIdentity,
    SourceObject,
    ToolIdentity,
)
from .models.findings import SEVERITY_RANK
from .models.querysets import tool_visible_to


def _count_subquery(queryset: QuerySet, column: str) -> Coalesce:
    """A correlated COUNT(*) as a subquery: cheaper than JOIN + GROUP BY on big lists."""
    counted = queryset.order_by().values(column).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def tool_list(*, user) -> QuerySet[AITool]:
    return (
        AITool.objects.visible_to(user)
        .select_related("owner", "team")
        .annotate(identity_count=_count_subquery(ToolIdentity.objects.filter(tool=OuterRef("pk")), "tool"))
    )


def with_finding_risk(queryset: QuerySet, *, by: str) -> QuerySet:
    """Tools or identities (`by` names the finding's column pointing at them) with `open_findings`, how many open
    findings they carry, and `top_severity`, the worst of them. Correlated subqueries on the (tool | identity, status,
    severity) finding indexes, computed for the rows of the page only: a constant number of queries, and no grouping
    over the 655,000 findings of the scale data."""
    open_findings = Finding.objects.filter(**{by: OuterRef("pk")}, status=FindingStatus.OPEN)
    worst = open_findings.order_by(SEVERITY_RANK).values("severity")[:1]
    return queryset.annotate(open_findings=_count_subquery(open_findings, by), top_severity=Subquery(worst))


def tool_detail(*, user, pk: int) -> AITool:
    """A tool with its identities, their live credentials and its grants, in a fixed number of queries. Revoked
    credentials are on the identity page; rendering them here roughly doubled the page's CPU time at scale."""
    credentials = Credential.objects.filter(revoked_at__isnull=True).order_by("-created_at")
    identities = ServiceIdentity.objects.select_related("owner").prefetch_related(
        Prefetch("credentials", queryset=credentials)
    )
    grants = ScopeGrant.objects.select_related("scope", "identity").order_by("status", "-granted_at")
    return (
        AITool.objects.visible_to(user)
        .select_related("owner", "team")
        .prefetch_related(
            Prefetch("identities", queryset=identities),
            Prefetch("grants", queryset=grants),
            "allowed_teams",
            "allowed_users",
        )
        .get(pk=pk)
    )


def identity_list(*, user, credential_counts: bool = True) -> QuerySet[ServiceIdentity]:
    """The identities a user sees, with owner and tools; `credential_count` for the page and CSV, which show it (the
    API does not, and counting per row costs its 100-row pages about 7 ms)."""
    identities = (
        ServiceIdentity.objects.visible_to(user)
        .select_related("owner")
        .prefetch_related(Prefetch("tools", queryset=AITool.objects.only("id", "slug", "name")))
    )
    if credential_counts:
        credentials = Credential.objects.filter(identity=OuterRef("pk"))
        identities = identities.annotate(credential_count=_count_subquery(credentials, "identity"))
    return identities


def identity_detail(*, user, pk: int) -> ServiceIdentity:
    grants = ScopeGrant.objects.select_related("scope", "tool").order_by("status", "-granted_at")
    return (
        ServiceIdentity.objects.visible_to(user)
        .select_related("owner")
        .prefetch_related(
            Prefetch("tools", queryset=AITool.objects.select_related("owner")),
            Prefetch("credentials", queryset=Credential.objects.order_by("-created_at")),
            Prefetch("grants", queryset=grants),
            # issue 14: where the identity came from (discovery provenance), one query however many sources.
            Prefetch("sources", queryset=SourceObject.objects.filter(object_type="identity").order_by("kind", "pk")),
        )
        .get(pk=pk)
    )


def credential_list(*, user) -> QuerySet[Credential]:
    return Credential.objects.visible_to(user).select_related("identity")


def grant_list(*, user) -> QuerySet[ScopeGrant]:
    return ScopeGrant.objects.visible_to(user).select_related("identity", "scope", "tool")


def recent_decisions(*, tool: AITool, limit: int = 20) -> list[AccessEvent]:
    return list(
        AccessEvent.objects.filter(tool=tool)
        .exclude(kind=AccessEvent.Kind.LISTING)  # a gateway lists on every session; the calls are what matter here
        .select_related("identity", "on_behalf_of", "scope")
        .order_by("-id")[:limit]
    )


def deny_reasons(*, tool: AITool, days: int = 7) -> list[dict]:
    """Deny reasons over the last days, most frequent first: what the tool keeps being refused, and why."""
    since = timezone.now() - timedelta(days=days)
    return list(
        AccessEvent.objects.filter(tool=tool, decision=AccessEvent.Decision.DENY, occurred_at__gte=since)
        .exclude(kind=AccessEvent.Kind.LISTING)
        .order_by()
        .values("reason")
        .annotate(n=Count("*"))
        .order_by("-n", "reason")
    )


def with_titles(findings) -> list[Finding]:
    """Findings with their detector's title attached, for templates."""
    from .detection import registry

    titles = {d.key: d.title for d in registry.all_detectors()}
    findings = list(findings)
    for finding in findings:
        finding.title = titles.get(finding.detector, finding.detector)
    return findings


def with_subject_columns(findings: QuerySet[Finding]) -> QuerySet[Finding]:
    """Findings with what their subject's name is made of when it is a credential (kind, last four) or a grant (scope),
    and the subject's identity: correlated primary-key lookups computed for the rows read only, so a list names its
    subjects in its own query (`with_subject_names` then reads nothing more)."""
    credential = Credential.objects.filter(pk=OuterRef("subject_id"))
    grant = ScopeGrant.objects.filter(pk=OuterRef("subject_id"))
    is_credential, is_grant = Q(subject_type="credential"), Q(subject_type="grant")

    def either(credential_column: str, grant_column: str | None, field) -> Case:
        whens = [When(is_credential, then=Subquery(credential.values(credential_column)[:1]))]
        if grant_column:
            whens.append(When(is_grant, then=Subquery(grant.values(grant_column)[:1])))
        return Case(*whens, default=None, output_field=field)

    return findings.annotate(
        s_what=either("kind", "scope__name", CharField()),
        s_last4=either("last4", None, CharField()),
        s_identity_id=either("identity_id", "identity_id", BigIntegerField()),
        s_identity_name=either("identity__name", "identity__name", CharField()),
    )


def with_subject_names(findings) -> list[Finding]:
    """Findings with `subject_label`, the name a person reads for what the finding is about ("access key …e605 of
    svc-crm-reader", "github:secrets:read held by gh-copilot-app"), and `subject_url`. One query at most whatever the
    number of findings: the credentials and the grants among the subjects, read as one UNION of the same columns.
    Tools and identities come from the findings' own select_related."""
    findings = list(findings)
    subjects = {}
    wanted: dict[str, set[int]] = {"credential": set(), "grant": set()}
    for finding in findings:
        key = (finding.subject_type, finding.subject_id)
        if finding.subject_type not in wanted or key in subjects:
            continue
        if hasattr(finding, "s_identity_id"):  # read with with_subject_columns: known, or known to be gone
            if finding.s_identity_id is not None:
                subjects[key] = (finding.s_what, finding.s_last4, finding.s_identity_id, finding.s_identity_name)
            continue
        wanted[finding.subject_type].add(finding.subject_id)
    parts = []
    if wanted["credential"]:
        credentials = Credential.objects.filter(pk__in=wanted["credential"]).order_by()
        parts.append(
            credentials.values_list(Value("credential"), "pk", "kind", "last4", "identity_id", "identity__name")
        )
    if wanted["grant"]:
        grants = ScopeGrant.objects.filter(pk__in=wanted["grant"]).order_by()
        parts.append(
            grants.values_list(Value("grant"), "pk", "scope__name", Value(""), "identity_id", "identity__name")
        )
    if parts:
        rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        subjects |= {(kind, pk): rest for kind, pk, *rest in rows}
    for finding in findings:
        finding.subject_label, finding.subject_url = _subject_name(finding, subjects)
    return findings


def _subject_name(finding: Finding, subjects: dict) -> tuple[str, str]:
    kind = finding.subject_type
    if kind == "tool" and finding.tool:
        return finding.tool.name, finding.tool.get_absolute_url()
    if kind == "identity" and finding.identity:
        return finding.identity.name, finding.identity.get_absolute_url()
    if kind in ("credential", "grant") and (subject := subjects.get((kind, finding.subject_id))):
        what, last4, identity_id, identity_name = subject
        url = reverse("inventory:identity_detail", args=[identity_id])
        if kind == "credential":
            credential_kind = CredentialKind(what).label if what in CredentialKind.values else what
            return f"{credential_kind.lower()} …{last4 or '????'} of {identity_name}", url
        return f"{what} held by {identity_name}", url
    # The subject is gone (deleted since the scan); say what it was rather than show a bare number.
    return f"a {finding.get_subject_type_display().lower()} since removed", ""


def owner_identity_ids(*, user) -> QuerySet:
    """The ids of the identities an owner sees (their own, and those behind their tools) as a UNION of two index
    lookups, for `identity IN (...)`: the OR form of `IdentityQuerySet.visible_to`, which suits paging a list, makes
    a subquery the planner reads by scanning all 100,000 identities. Owners only: security sees every identity."""
    own = ServiceIdentity.objects.filter(owner=user).order_by().values("pk")
    return own.union(ToolIdentity.objects.filter(tool__owner=user).order_by().values("identity_id"))


def counted_by_identity(queryset: QuerySet, *, user) -> QuerySet:
    """Credentials or grants the user sees, exactly as `visible_to(user)`, for a (capped) count: the owner's
    identities hashed once and their rows read through the identity index."""
    if not roles.may_use_portal(user):
        return queryset.none()
    return queryset if roles.sees_everything(user) else queryset.filter(identity__in=owner_identity_ids(user=user))


def scoped_by_identity(queryset: QuerySet, *, user) -> QuerySet:
    """Credentials or grants (anything with an `identity`) the user sees, exactly as `visible_to(user)`, for reads
    that walk an ordered index and stop after a few rows (a to-do list): the owner's scope as two correlated EXISTS
    probes per row walked. `visible_to`'s `identity IN (the owner's identities)` makes the planner first build the
    owner's whole set of identities, by scanning all 100,000 of them (45 ms), or join it row by row (100 ms)."""
    if not roles.may_use_portal(user):
        return queryset.none()
    if roles.sees_everything(user):
        return queryset
    owned = ServiceIdentity.objects.filter(pk=OuterRef("identity_id"), owner=user)
    behind_own_tool = ToolIdentity.objects.filter(identity_id=OuterRef("identity_id"), tool__owner=user)
    return queryset.filter(Exists(owned) | Exists(behind_own_tool))


def open_finding_ids(*, user, severity: str | None = None) -> QuerySet:
    """The ids of the open findings `user` sees (of one severity, if given): exactly `Finding.visible_to(user)`, shaped
    so an owner's read is index lookups instead of a scan of every finding.

    Finding.visible_to is an OR of three IN subqueries, which PostgreSQL can only test row by row: a scan of all
    656,000 findings of the scale data (0.6-0.9 s for the owner with the most tools). Here the owner's findings are
    two disjoint parts read through the (identity, status, severity) and (tool, status, severity) indexes, which
    carry the columns a to-do list needs: those on an identity the owner sees (their own or one behind their tool),
    and those on their tools whose identity is none of these (tool findings have none). Disjoint, so UNION ALL needs
    no de-duplicating sort, and a LIMIT stops it early (a capped count)."""
    findings = Finding.objects.filter(status=FindingStatus.OPEN).order_by()
    if severity:
        findings = findings.filter(severity=severity)
    if not roles.may_use_portal(user):
        return findings.none().values("pk")
    if roles.sees_everything(user):
        return findings.values("pk")
    on_identity = findings.filter(identity__in=owner_identity_ids(user=user))
    # Correlated NOT EXISTS probes for the tool part's few rows: a hashed NOT IN of the owner's identities made the
    # planner walk the whole severity in the tool index (80 ms against 13 ms).
    owned = ServiceIdentity.objects.filter(pk=OuterRef("identity_id"), owner=user)
    bound = ToolIdentity.objects.filter(identity_id=OuterRef("identity_id"), tool__owner=user)
    on_tool_only = findings.filter(tool__in=AITool.objects.filter(owner=user).values("pk")).filter(
        Q(identity__isnull=True) | (~Exists(owned) & ~Exists(bound))
    )
    return on_identity.values("pk").union(on_tool_only.values("pk"), all=True)


def probed_findings(queryset: QuerySet[Finding], *, user) -> QuerySet[Finding]:
    """Findings `user` sees, exactly as `Finding.visible_to(user)`, for walking an ordered index until a list is
    full: each row walked is tested by three correlated EXISTS probes (its tool owned, its identity owned, its
    identity behind an owned tool) instead of first building the owner's whole sets. Fast when the owner's findings
    are dense in the walk (the owner with the most tools: 8 critical findings found within the first 120), slow when
    sparse; `open_finding_ids` suits the sparse case."""
    if not roles.may_use_portal(user):
        return queryset.none()
    if roles.sees_everything(user):
        return queryset
    own_tool = AITool.objects.filter(pk=OuterRef("tool_id"), owner=user)
    own_identity = ServiceIdentity.objects.filter(pk=OuterRef("identity_id"), owner=user)
    behind_own_tool = ToolIdentity.objects.filter(identity_id=OuterRef("identity_id"), tool__owner=user)
    return queryset.filter(Exists(own_tool) | Exists(own_identity) | Exists(behind_own_tool))


def findings_for_tool(*, user, tool: AITool) -> list[Finding]:
    """Unresolved findings on the tool itself or on any identity it acts through."""
    if not tool_visible_to(user, tool):
        return []
    # Whoever may see the tool may see every one of these (an owner sees findings on their tools and on the
    # identities behind them), so Finding.visible_to would only add a filter that misleads the planner into
    # scanning every finding (255 ms against 2 ms for the owner with the most tools).
    bound = ToolIdentity.objects.filter(tool=tool).values("identity_id")
    # A UNION of two index lookups; an OR of the two conditions scans every finding.
    on_tool = Finding.objects.filter(tool=tool).order_by().values("pk")
    via_identity = Finding.objects.filter(identity_id__in=bound).order_by().values("pk")
    findings = (
        with_subject_columns(Finding.objects.unresolved())
        .with_last_seen()
        .filter(pk__in=on_tool.union(via_identity))
        .select_related("tool", "identity")
        .order_by("-last_seen_at", "-id")[:100]
    )
    return with_subject_names(with_titles(findings))


def findings_for_identity(*, user, identity: ServiceIdentity) -> list[Finding]:
    findings = (
        with_subject_columns(Finding.objects.visible_to(user))
        .unresolved()
        .with_last_seen()
        .filter(identity=identity)
        .select_related("tool", "identity")
        .order_by("-last_seen_at", "-id")[:100]
    )
    return with_subject_names(with_titles(findings))


# The objects an audit entry can be about, by its object_type: how to read their names in one query per type, and
# where each is shown. Access requests belong to approvals, which inventory never imports: the model is looked up by
# name, and its page by URL name, so the audit trail still names them without a code dependency.
_AUDITED = {
    "inventory.aitool": ("inventory.AITool", (), lambda o: o.name, lambda o: o.get_absolute_url()),
    "inventory.serviceidentity": ("inventory.ServiceIdentity", (), lambda o: o.name, lambda o: o.get_absolute_url()),
    "inventory.credential": (
        "inventory.Credential",
        ("identity",),
        lambda o: f"{o.get_kind_display().lower()} …{o.last4 or '????'} of {o.identity.name}",
        lambda o: o.identity.get_absolute_url(),
    ),
    "inventory.scopegrant": (
        "inventory.ScopeGrant",
        ("identity", "scope"),
        lambda o: f"{o.scope.name} held by {o.identity.name}",
        lambda o: o.identity.get_absolute_url(),
    ),
    "inventory.finding": (
        "inventory.Finding",
        (),
        lambda o: with_titles([o])[0].title,
        lambda o: reverse("inventory:finding_detail", args=[o.pk]),
    ),
    "approvals.accessrequest": (
        "approvals.AccessRequest",
        ("tool", "identity"),
        lambda o: f"scope request: {o.tool.name} · {o.identity.name}",
        lambda o: reverse("approvals:request_detail", args=[o.pk]),
    ),
}


def with_audit_labels(entries) -> list:
    """Audit entries with `object_label` and `object_url` (the object's name and page, read now: one query per kind of
    object on the page, not per entry; the name recorded at the time when the object is gone) and `changes`, the
    changed fields as "status: pending → approved"."""
    from django.apps import apps

    entries = list(entries)
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        if entry.object_type in _AUDITED and str(entry.object_id).isdigit():
            wanted.setdefault(entry.object_type, set()).add(int(entry.object_id))
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for object_type, ids in wanted.items():
        model_name, related, label, url = _AUDITED[object_type]
        for obj in apps.get_model(model_name).objects.select_related(*related).filter(pk__in=ids):
            found[(object_type, obj.pk)] = (label(obj), url(obj))
    for entry in entries:
        key = (entry.object_type, int(entry.object_id)) if str(entry.object_id).isdigit() else None
        entry.object_label, entry.object_url = found.get(key, (entry.object_repr or entry.object_type, ""))
        entry.changes = audit_changes(entry.before, entry.after)
    return entries


def audit_changes(before, after) -> list[str]:
    """What a change did, field by field, in words a person reads: "status: pending → approved"; a new object's fields
    as "status: pending"."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    lines = []
    for field in list(dict.fromkeys([*before, *after])):
        old, new = before.get(field), after.get(field)
        if field in before and field in after and old == new:
            continue
        name = str(field).replace("_", " ")
        if field not in before:
            lines.append(f"{name}: {_audit_value(new)}")
        elif field not in after:
            lines.append(f"{name}: {_audit_value(old)} → (removed)")
        else:
            lines.append(f"{name}: {_audit_value(old)} → {_audit_value(new)}")
    return lines


def _audit_value(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_audit_value(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_audit_value(item)}" for key, item in value.items()) or "none"
    return str(value)
