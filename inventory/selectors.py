"""Reads shared by pages, the API and exports. Each owns its joins and annotations so nothing lazy-loads."""

from datetime import timedelta

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .choices import Environment
from .models import AccessEvent, AITool, Credential, Finding, ScopeGrant, ServiceIdentity, ToolIdentity
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
        )
        .get(pk=pk)
    )


def credential_list(*, user) -> QuerySet[Credential]:
    return Credential.objects.visible_to(user).select_related("identity")


def grant_list(*, user) -> QuerySet[ScopeGrant]:
    return ScopeGrant.objects.visible_to(user).select_related("identity", "scope", "tool")


def dashboard_counts(*, user) -> dict:
    """Totals and per-environment counts for the home page, one aggregate query per kind of object."""
    tools = AITool.objects.visible_to(user)
    identities = ServiceIdentity.objects.visible_to(user)
    by_env_tools = dict(tools.order_by().values_list("environment").annotate(n=Count("*")))
    by_env_identities = dict(identities.order_by().values_list("environment").annotate(n=Count("*")))
    return {
        "tools": sum(by_env_tools.values()),
        "identities": sum(by_env_identities.values()),
        "credentials": Credential.objects.visible_to(user).filter(revoked_at__isnull=True).count(),
        "grants": ScopeGrant.objects.visible_to(user).active().count(),
        "by_environment": [
            {"value": env.value, "label": env.label, "tools": by_env_tools.get(env.value, 0),
             "identities": by_env_identities.get(env.value, 0)}
            for env in Environment
        ],
    }  # fmt: skip


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
        Finding.objects.unresolved()
        .with_last_seen()
        .filter(pk__in=on_tool.union(via_identity))
        .select_related("tool", "identity")
        .order_by("-last_seen_at", "-id")[:100]
    )
    return with_titles(findings)


def findings_for_identity(*, user, identity: ServiceIdentity) -> list[Finding]:
    findings = (
        Finding.objects.visible_to(user)
        .unresolved()
        .with_last_seen()
        .filter(identity=identity)
        .select_related("tool", "identity")
        .order_by("-last_seen_at", "-id")[:100]
    )
    return with_titles(findings)
