"""Fill an empty inventory with benchmark-sized, believable data: thousands of tools, a million credentials.

PostgreSQL gets COPY (psycopg 3) straight into the model tables, which is what turns a million
credentials from minutes of INSERTs into seconds; other databases get batched bulk_create. Table and
column names come from each model's `_meta`, so the command follows the models, including on a test
database built without migrations. Ids are assigned here (the tables start empty) so that foreign
keys can be written without reading anything back; the sequences are moved past them at the end.

Everything is drawn from one seeded random generator: the same arguments give the same estate.
"""

import random
import time
from array import array
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from itertools import accumulate, islice

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Model
from django.utils.text import slugify

from inventory import choices
from inventory.fingerprints import FINGERPRINT_PREFIX
from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity

OWNER_PREFIX = "seed-owner-"
DAY = 86400.0
TEAM_MEMBERS = Team.members.through
TOOL_TEAMS = AITool.allowed_teams.through  # whom a tool may act for: members of these teams...
TOOL_USERS = AITool.allowed_users.through  # ...and these people
# Tables this command writes, in foreign-key order; any row in them means "not empty".
SEEDED_MODELS = (
    Team,
    AITool,
    ServiceIdentity,
    ToolIdentity,
    Credential,
    Scope,
    ScopeGrant,
    TEAM_MEMBERS,
    TOOL_TEAMS,
    TOOL_USERS,
)

DOMAINS = (
    "payments", "billing", "support", "incident", "search", "checkout", "fraud", "identity", "platform",
    "data", "mobile", "growth", "security", "sales", "marketing", "finance", "legal", "hr", "logistics",
    "catalog", "docs", "release", "observability", "ml", "analytics",
)  # fmt: skip
TEAM_SUFFIXES = ("Platform", "Engineering", "Operations", "Data", "Tooling", "Reliability")
TOOL_WORDS = {
    choices.ToolKind.ASSISTANT: "assistant",
    choices.ToolKind.AGENT: "agent",
    choices.ToolKind.CODING_ASSISTANT: "copilot",
    choices.ToolKind.SUPPORT_BOT: "support bot",
    choices.ToolKind.INCIDENT_ROUTER: "incident router",
    choices.ToolKind.MCP_SERVER: "MCP server",
    choices.ToolKind.OTHER: "helper",
}
TOOL_TASKS = (
    "triages incoming tickets", "drafts replies for review", "summarises incidents", "reviews pull requests",
    "answers questions from the wiki", "reconciles invoices", "routes pages to the on-call", "tags datasets",
    "opens and updates issues", "runs read-only SQL for analysts",
)  # fmt: skip
VENDORS = ("OpenAI", "Anthropic", "Google", "Microsoft", "GitHub", "Atlassian", "Zendesk", "In-house", "")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena")
LAST_NAMES = ("Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jansen")

# Where identities live, with the resources their scopes reach; * marks personal, customer or secret data.
PROVIDERS = {
    "github": ("contents", "issues", "pull_requests", "actions", "*secrets", "org"),
    "aws": ("*s3", "*iam", "lambda", "*secretsmanager", "dynamodb", "cloudwatch"),
    "gcp": ("*bigquery", "storage", "*iam", "pubsub", "logging"),
    "azure": ("*keyvault", "blob", "devops", "monitor"),
    "atlassian": ("jira", "confluence", "bitbucket"),
    "slack": ("chat", "channels", "*users", "files"),
    "salesforce": ("*customer", "opportunity", "case"),
    "zendesk": ("*tickets", "macros", "*users"),
    "okta": ("*users", "groups", "apps"),
    "snowflake": ("*warehouse", "*pii_schema", "analytics"),
    "pagerduty": ("incidents", "schedules", "services"),
    "datadog": ("metrics", "logs", "monitors"),
    "google-workspace": ("*gmail", "drive", "calendar", "*directory"),
    "servicenow": ("incident", "change", "*hr_case"),
    "stripe": ("*charges", "*customers", "refunds", "payouts"),
    "openai": ("models", "files", "assistants"),
    "notion": ("pages", "databases"),
    "kubernetes": ("pods", "*secrets", "deployments", "configmaps"),
    "hubspot": ("*contacts", "deals"),
}
EXTERNAL_IDS = {
    "aws": "arn:aws:iam::{n:012d}:role/{name}",
    "gcp": "{name}@acme-{env}.iam.gserviceaccount.com",
    "github": "app/{n}",
    "okta": "0oa{n:014x}",
}
IDENTITY_ABBREVIATIONS = {
    choices.IdentityKind.SERVICE_ACCOUNT: "sa",
    choices.IdentityKind.API_KEY: "key",
    choices.IdentityKind.OAUTH_CLIENT: "oauth",
    choices.IdentityKind.DELEGATED_TOKEN: "delegated",
    choices.IdentityKind.WORKLOAD_IDENTITY: "workload",
}
CREDENTIAL_KINDS = {
    choices.IdentityKind.SERVICE_ACCOUNT: ("password", "ssh_key", "api_key", "certificate"),
    choices.IdentityKind.API_KEY: ("api_key",),
    choices.IdentityKind.OAUTH_CLIENT: ("client_secret", "client_secret", "client_secret", "refresh_token"),
    choices.IdentityKind.DELEGATED_TOKEN: ("access_token", "refresh_token"),
    choices.IdentityKind.WORKLOAD_IDENTITY: ("certificate", "access_token"),
}
RESOURCE_PATTERNS = ("repo:acme/{d}-*", "project:{D}", "bucket:acme-{d}-{env}", "channel:#{d}-alerts", "queue:{d}")

# Weighted choices: (value, weight).
ENVIRONMENTS = (("prod", 50), ("staging", 25), ("dev", 25))
TOOL_KINDS = (
    ("assistant", 25), ("agent", 20), ("coding_assistant", 18), ("support_bot", 12), ("incident_router", 8),
    ("mcp_server", 12), ("other", 5),
)  # fmt: skip
CLASSIFICATIONS = (("public", 5), ("internal", 55), ("confidential", 30), ("restricted", 10))
TOOL_STATUSES = (("active", 80), ("pilot", 12), ("retired", 8))
IDENTITY_KINDS = (
    ("service_account", 30), ("api_key", 30), ("oauth_client", 20), ("delegated_token", 10), ("workload_identity", 10),
)  # fmt: skip
IDENTITY_STATUSES = (("active", 88), ("disabled", 7), ("retired", 5))
# Mostly a vault; the few percent in prompts, repositories and env vars are what the detectors are for.
STORAGES = (
    ("vault", 70), ("secret_manager", 10), ("ci_secret", 6), ("connector_config", 4), ("env", 4), ("prompt", 2),
    ("repository", 2), ("unknown", 2),
)  # fmt: skip
GRANT_STATUSES = (("active", 75), ("expired", 15), ("revoked", 10))
SHARED_FINGERPRINT_SHARE = 0.03  # the same secret pasted into a second identity
SECOND_TOOL_SHARE = 0.05  # one identity behind two tools: the reuse finding


def _picker(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> Callable[[], str]:
    """A fast weighted choice: bisect on cumulative weights with one random() call."""
    values = [value for value, _ in weighted]
    cumulative = list(accumulate(weight for _, weight in weighted))
    total, rand = cumulative[-1], rng.random
    return lambda: values[bisect(cumulative, rand() * total)]


def _datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class Estate:
    """The generated inventory: a skeleton of ids and relations built up front, rows produced lazily per table.

    The skeleton (who owns which tool, which tool each identity sits behind, when it was created)
    is small arrays; the million-row tables are generators, so memory stays flat while COPY streams.
    """

    def __init__(self, *, rng: random.Random, owners: Sequence[int], **counts: int) -> None:
        """counts: teams, tools, identities, credentials, scopes, grants."""
        self.rng, self.owners, self.counts = rng, owners, counts
        self.now = time.time()
        teams, tools, identities = counts["teams"], counts["tools"], counts["identities"]
        # A few owners run most tools (a platform team), a long tail runs one or two.
        owner_weights = list(accumulate(1 / (rank + 1) ** 0.7 for rank in range(len(owners))))
        self.owner_team = [rng.randint(1, teams) for _ in owners] if teams else [None] * len(owners)
        owner_rank = rng.choices(range(len(owners)), cum_weights=owner_weights, k=tools)
        self.tool_owner = array("q", (owners[rank] for rank in owner_rank))
        environment = _picker(rng, ENVIRONMENTS)
        self.tool_env = [environment() for _ in range(tools)]
        # Usually the owner's team, sometimes another one, now and then none (a finding of its own).
        self.tool_team: list[int | None] = []
        for rank in owner_rank:
            roll = rng.random()
            home = self.owner_team[rank] if roll < 0.85 else None
            self.tool_team.append(rng.randint(1, teams) if 0.85 <= roll < 0.95 and teams else home)
        # Most tools act through a handful of identities, some through dozens.
        tool_weights = list(accumulate(rng.lognormvariate(0, 0.8) for _ in range(tools)))
        self.identity_tool = array(
            "l", (t + 1 for t in rng.choices(range(tools), cum_weights=tool_weights, k=identities))
        )
        self.second_tool: dict[int, int] = {}
        if tools > 1:
            for identity in rng.sample(range(identities), int(identities * SECOND_TOOL_SHARE)):
                # Any other tool: shift the first one by 1..tools-1 around the ring of ids.
                first = self.identity_tool[identity]
                self.second_tool[identity] = (first - 1 + rng.randrange(1, tools)) % tools + 1
        kind = _picker(rng, IDENTITY_KINDS)
        self.identity_kind = [kind() for _ in range(identities)]
        self.identity_created = array("d", (self.now - rng.uniform(30, 1400) * DAY for _ in range(identities)))

    # Each table: (model, field names in row order, rows). Names may be attnames (owner_id).

    def tables(self) -> Iterator[tuple[type[Model], tuple[str, ...], Iterable[tuple]]]:
        yield Team, ("id", "name", "slug", "created_at"), self.team_rows()
        yield AITool, self.TOOL_FIELDS, self.tool_rows()
        yield ServiceIdentity, self.IDENTITY_FIELDS, self.identity_rows()
        yield ToolIdentity, ("id", "tool_id", "identity_id", "created_at"), self.binding_rows()
        yield Credential, self.CREDENTIAL_FIELDS, self.credential_rows()
        yield Scope, ("id", "provider", "name", "risk", "sensitive", "description"), self.scope_rows()
        yield ScopeGrant, self.GRANT_FIELDS, self.grant_rows()
        yield TEAM_MEMBERS, _m2m_fields(Team, "members"), self.member_rows()
        yield TOOL_TEAMS, _m2m_fields(AITool, "allowed_teams"), self.allowed_team_rows()
        yield TOOL_USERS, _m2m_fields(AITool, "allowed_users"), self.allowed_user_rows()

    def team_rows(self) -> Iterator[tuple]:
        names = [f"{domain.title()} {suffix}" for suffix in TEAM_SUFFIXES for domain in DOMAINS]
        for number in range(1, self.counts["teams"] + 1):
            base = names[(number - 1) % len(names)]
            name = base if number <= len(names) else f"{base} {number // len(names) + 1}"
            yield number, name, slugify(name), _datetime(self.now - self.rng.uniform(400, 1500) * DAY)

    TOOL_FIELDS = (
        "id", "name", "slug", "kind", "vendor", "owner_id", "team_id", "environment", "data_classification", "status",
        "description", "enforces_authorization", "created_at", "updated_at",
    )  # fmt: skip

    def tool_rows(self) -> Iterator[tuple]:
        rng, now = self.rng, self.now
        kind, classification, status = (_picker(rng, w) for w in (TOOL_KINDS, CLASSIFICATIONS, TOOL_STATUSES))
        for index in range(self.counts["tools"]):
            number = index + 1
            tool_kind, domain = kind(), rng.choice(DOMAINS)
            word = TOOL_WORDS[tool_kind]
            created = now - rng.uniform(1, 1100) * DAY
            description = f"{word.capitalize()} for the {domain} team that {rng.choice(TOOL_TASKS)}."
            yield (
                number, f"{domain.title()} {word} {number:05d}", f"{domain}-{slugify(word)}-{number}", tool_kind,
                rng.choice(VENDORS), self.tool_owner[index], self.tool_team[index], self.tool_env[index],
                classification(), status(), description, rng.random() < 0.4, _datetime(created),
                _datetime(created + rng.random() * (now - created)),
            )  # fmt: skip

    IDENTITY_FIELDS = (
        "id", "name", "kind", "provider", "external_id", "owner_id", "environment", "third_party", "status",
        "last_used_at", "interactive_use_seen", "last_reviewed_at", "created_at", "updated_at",
    )  # fmt: skip

    def identity_rows(self) -> Iterator[tuple]:
        rng, now, rand = self.rng, self.now, self.rng.random
        status, environment = _picker(rng, IDENTITY_STATUSES), _picker(rng, ENVIRONMENTS)
        providers = tuple(PROVIDERS)
        for index in range(self.counts["identities"]):
            number, tool = index + 1, self.identity_tool[index] - 1
            kind, provider = self.identity_kind[index], rng.choice(providers)
            env = self.tool_env[tool] if rand() < 0.9 else environment()
            name = f"{provider}-{IDENTITY_ABBREVIATIONS[kind]}-{env}-{number:06d}"
            template = EXTERNAL_IDS.get(provider)
            n = rng.getrandbits(40)
            external_id = template.format(n=n, name=name, env=env) if template else f"{n:010x}"
            # Usually the tool's owner holds its identity; sometimes another engineer registered it.
            owner = self.tool_owner[tool] if rand() < 0.85 else rng.choice(self.owners)
            created = self.identity_created[index]
            roll = rand()
            if roll < 0.65:  # in daily use
                last_used = _datetime(now - rand() * 14 * DAY)
            elif roll < 0.9:  # stale: nothing for three months or more
                last_used = _datetime(now - rng.uniform(90, 400) * DAY)
            else:
                last_used = None
            reviewed = _datetime(now - rng.uniform(1, 500) * DAY) if rand() < 0.4 else None
            yield (
                number, name, kind, provider, external_id, owner, env, rand() < 0.1, status(), last_used, rand() < 0.03,
                reviewed, _datetime(created), _datetime(created + rand() * (now - created)),
            )  # fmt: skip

    def binding_rows(self) -> Iterator[tuple]:
        number = 0
        for index in range(self.counts["identities"]):
            created = _datetime(self.identity_created[index])
            number += 1
            yield number, self.identity_tool[index], index + 1, created
            if index in self.second_tool:
                number += 1
                yield number, self.second_tool[index], index + 1, created

    CREDENTIAL_FIELDS = (
        "id", "identity_id", "kind", "fingerprint", "last4", "storage", "created_at", "last_rotated_at", "expires_at",
        "last_used_at", "revoked_at",
    )  # fmt: skip

    def credential_rows(self) -> Iterator[tuple]:
        """Grouped by identity, oldest first: rotation leaves older ones revoked, but not always."""
        rng, now = self.rng, self.now
        rand, bits, uniform = rng.random, rng.getrandbits, rng.uniform
        storage = _picker(rng, STORAGES)
        identities = self.counts["identities"]
        per_identity = array("l", [0]) * identities
        for index in rng.choices(range(identities), k=self.counts["credentials"]) if identities else ():
            per_identity[index] += 1
        shared: list[tuple[str, str]] = []  # fingerprints of earlier identities, to paste into later ones
        number = 0
        for index in range(identities):
            count = per_identity[index]
            if not count:
                continue
            kinds, floor = CREDENTIAL_KINDS[self.identity_kind[index]], self.identity_created[index]
            seen: set[str] = set()
            for position, created in enumerate(sorted(floor + rand() * (now - floor) for _ in range(count))):
                fingerprint = None
                if shared and rand() < SHARED_FINGERPRINT_SHARE:
                    fingerprint, last4 = shared[int(rand() * len(shared))]
                if fingerprint is None or fingerprint in seen:
                    fingerprint, last4 = f"{FINGERPRINT_PREFIX}{bits(256):064x}", f"{bits(16):04x}"
                seen.add(fingerprint)
                newest = position == count - 1
                revoked = created + rand() * (now - created) if not newest and rand() < 0.7 else None
                end = revoked or now
                rotated = _datetime(created + rand() * (end - created)) if rand() < 0.6 else None
                expires = _datetime(created + rng.choice((30, 90, 180, 365, 730)) * DAY) if rand() < 0.7 else None
                if rand() < 0.15:
                    used = None
                elif revoked is None and rand() < 0.7:
                    used = _datetime(now - rand() * 14 * DAY)
                else:
                    used = _datetime(uniform(created, end))
                number += 1
                yield (
                    number, index + 1, kinds[int(rand() * len(kinds))], fingerprint, last4, storage(),
                    _datetime(created), rotated, expires, used, _datetime(revoked) if revoked else None,
                )  # fmt: skip
            if len(shared) < 20_000:
                shared.append((fingerprint, last4))
            else:
                shared[int(rand() * len(shared))] = (fingerprint, last4)

    def member_rows(self) -> Iterator[tuple]:
        rows = ((team, owner) for team, owner in zip(self.owner_team, self.owners, strict=True) if team)
        for number, (team, owner) in enumerate(rows, 1):
            yield number, team, owner

    def allowed_team_rows(self) -> Iterator[tuple]:
        """Most tools may act for their own team's members; the rest name people instead."""
        rows = ((index + 1, team) for index, team in enumerate(self.tool_team) if team and self.rng.random() < 0.9)
        for number, (tool, team) in enumerate(rows, 1):
            yield number, tool, team

    def allowed_user_rows(self) -> Iterator[tuple]:
        number = 0
        for index in range(self.counts["tools"]):
            if self.rng.random() < 0.1:
                people = {self.tool_owner[index], *self.rng.sample(self.owners, min(2, len(self.owners)))}
                for user in sorted(people):
                    number += 1
                    yield number, index + 1, user

    def scope_rows(self) -> Iterator[tuple]:
        catalog = [
            (provider, resource.lstrip("*"), action, resource.startswith("*"))
            for action in ("read", "write", "admin")
            for provider, resources in PROVIDERS.items()
            for resource in resources
        ]
        for index in range(self.counts["scopes"]):
            provider, resource, action, sensitive = catalog[index % len(catalog)]
            name = f"{provider}:{resource}:{action}"
            if index >= len(catalog):
                name += f":{index // len(catalog) + 1}"
            yield index + 1, provider, name, action, sensitive, f"{action.capitalize()} {provider} {resource}."

    GRANT_FIELDS = (
        "id", "identity_id", "scope_id", "tool_id", "status", "resource_constraint", "granted_at", "expires_at",
        "last_used_at", "revoked_at", "revoke_reason", "approvals", "approved_by_policy",
    )  # fmt: skip

    def grant_rows(self) -> Iterator[tuple]:
        rng, now, rand = self.rng, self.now, self.rng.random
        identities, scopes = self.counts["identities"], self.counts["scopes"]
        if not identities or not scopes:
            return
        status = _picker(rng, GRANT_STATUSES)
        # Read scopes are requested far more often than admin ones; the catalog lists them first.
        scope_weights = list(accumulate(1 / (rank + 1) ** 0.5 for rank in range(scopes)))
        scope_ids = rng.choices(range(1, scopes + 1), cum_weights=scope_weights, k=self.counts["grants"])
        active: set[tuple[int, int, str]] = set()
        for index, scope in enumerate(scope_ids):
            identity = rng.randrange(identities)
            roll = rand()
            tool = None if roll > 0.7 else self.identity_tool[identity]
            if identity in self.second_tool and roll < 0.2:
                tool = self.second_tool[identity]
            constraint = ""
            if rand() < 0.45:
                domain = rng.choice(DOMAINS)
                pattern = rng.choice(RESOURCE_PATTERNS)
                constraint = pattern.format(
                    d=domain, D=domain.upper()[:4], env=self.tool_env[self.identity_tool[identity] - 1]
                )
            grant_status = status()
            # uniq_active_grant: one active grant per identity, scope and resource; a repeat is an older, lapsed one.
            key = (identity, scope, constraint)
            if grant_status == "active" and key in active:
                grant_status = "expired"
            granted = now - rng.uniform(0, 700) * DAY
            expires = revoked = None
            reason = ""
            if grant_status == "active":
                active.add(key)
                # A few active grants are past their end date: the expiry job has not caught them yet.
                expires = now + rng.uniform(-3, 365) * DAY if rand() < 0.6 else None
            elif grant_status == "expired":
                expires = _uniform_between(rng, granted, now)
            else:
                revoked = _uniform_between(rng, granted, now)
                reason = rng.choice(("Access review: no longer needed.", "Tool retired.", "Suspected credential leak."))
            end = revoked or (min(expires, now) if expires else now)
            used = _datetime(_uniform_between(rng, granted, end)) if rand() < 0.8 else None
            # Most grants were approved through the workflow (two approvers meet any policy); some were only
            # observed by an import and carry no approval.
            approvals = 0 if rand() < 0.1 else 2
            yield (
                index + 1, identity + 1, scope, tool, grant_status, constraint, _datetime(granted),
                _datetime(expires) if expires else None, used, _datetime(revoked) if revoked else None, reason,
                approvals, False,
            )  # fmt: skip


def _m2m_fields(model: type[Model], name: str) -> tuple[str, str, str]:
    field = model._meta.get_field(name)
    return "id", field.m2m_column_name(), field.m2m_reverse_name()


def seeded_and_dependent_models() -> list[type[Model]]:
    """The tables this command fills and every table that points into them, however indirectly.

    --reset must clear access requests, findings, access events and the like with the tools they name;
    reference data that only points outward (frameworks and controls, users, groups) is left alone.
    """
    doomed: set[type[Model]] = set(SEEDED_MODELS)
    candidates = [model for model in apps.get_models(include_auto_created=True) if model._meta.managed]
    grew = True
    while grew:
        grew = False
        for model in candidates:
            targets = {field.related_model for field in model._meta.concrete_fields if field.is_relation}
            if model not in doomed and targets & doomed:
                doomed.add(model)
                grew = True
    return sorted(doomed, key=lambda model: model._meta.db_table)


def _uniform_between(rng: random.Random, start: float, end: float) -> float:
    return start + rng.random() * max(end - start, 0.0)


def _columns(model: type[Model], fields: Sequence[str]) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(model._meta.get_field(name).column) for name in fields)


def _with_defaults(model: type[Model], fields: Sequence[str], rows: Iterable[tuple]) -> tuple[tuple, Iterable[tuple]]:
    """Columns added to a model after this command was written get their default, so COPY keeps working.

    (bulk_create fills defaults by itself; COPY leaves a missing NOT NULL column to fail.)
    """
    missing = [field for field in model._meta.concrete_fields if field.attname not in fields]
    if not missing:
        return tuple(fields), rows
    extra = []
    for field in missing:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = _datetime(time.time())
        elif field.has_default() or field.null or field.empty_strings_allowed:
            value = field.get_default()  # what bulk_create would store: the default, None or ""
        else:
            raise CommandError(f"seed_scale does not know what to put in {model.__name__}.{field.name}; teach Estate.")
        extra.append(field.get_db_prep_save(value, connection))
    return (*fields, *(field.attname for field in missing)), (row + tuple(extra) for row in rows)


def copy_rows(model: type[Model], fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """Stream rows into the table with binary COPY FROM STDIN: no statement per row, no text parsing.

    Binary, because the server parsing timestamps out of text costs more than everything else together.
    Binary COPY needs each column's exact type; the table itself says what they are.
    """
    fields, rows = _with_defaults(model, fields, rows)
    table, columns = _columns(model, fields)
    written = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} LIMIT 0")
        types = [column.type_code for column in cursor.description]
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
                written += 1
    return written


# Secondary indexes, unique and foreign-key constraints of a table, with the DDL that recreates each one as it was.
# Primary keys stay: ids arrive in order, so keeping them is cheap, and other tables' foreign keys need them.
_SECONDARY_DDL = """
    SELECT 'constraint', conname, pg_get_constraintdef(oid), contype = 'f'
    FROM pg_constraint WHERE conrelid = %(table)s::regclass AND contype IN ('u', 'f')
    UNION ALL
    SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), false
    FROM pg_index i
    WHERE i.indrelid = %(table)s::regclass AND NOT i.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
"""


@contextmanager
def secondary_indexes_deferred(models: Sequence[type[Model]]) -> Iterator[None]:
    """Drop secondary indexes and unique/foreign-key constraints, load, then rebuild them exactly as they were.

    What pg_restore does: one sorted index build beats a million random B-tree inserts (the fingerprint
    indexes alone outgrow shared_buffers), and one validating join per foreign key beats a million deferred
    trigger checks at commit. Runs inside the caller's transaction, so a failed load leaves the schema as it was.
    """
    quote = connection.ops.quote_name
    restore: list[tuple[bool, str]] = []
    with connection.cursor() as cursor:
        for model in models:
            table = quote(model._meta.db_table)
            cursor.execute(_SECONDARY_DDL, {"table": table})
            for what, name, definition, foreign in cursor.fetchall():
                if what == "constraint":
                    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
                    restore.append((foreign, f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}"))
                else:
                    cursor.execute(f"DROP INDEX {name}")
                    restore.append((False, definition))
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Indexes and unique constraints first, so that the foreign-key checks run against finished tables.
        for _foreign, sql in sorted(restore, key=lambda item: item[0]):
            cursor.execute(sql)


def bulk_create_rows(model: type[Model], fields: Sequence[str], rows: Iterable[tuple], batch_size: int = 5000) -> int:
    """The portable path. auto_now fields get "now" here: bulk_create fills them in, COPY does not."""
    rows, written = iter(rows), 0
    while batch := list(islice(rows, batch_size)):
        model._default_manager.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in batch])
        written += len(batch)
    return written


class Command(BaseCommand):
    help = (
        "Fill an empty inventory with benchmark-sized data (COPY on PostgreSQL). "
        "--reset first empties the inventory tables and every table that references them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tools", type=int, default=10_000)
        parser.add_argument("--identities", type=int, default=100_000)
        parser.add_argument("--credentials", type=int, default=1_000_000)
        parser.add_argument("--grants", type=int, default=300_000)
        parser.add_argument("--scopes", type=int, default=200)
        parser.add_argument("--owners", type=int, default=200, help="Owner accounts, about 8%% of them departed.")
        parser.add_argument("--teams", type=int, default=None, help="Default: one per 200 tools, 3 to 60.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed; the same seed gives the same data.")
        parser.add_argument("--reset", action="store_true", help="Empty the inventory first (bench databases only).")

    def handle(self, *args, **options):
        for name in ("tools", "identities", "credentials", "grants", "scopes", "owners"):
            if options[name] < 0:
                raise CommandError(f"--{name} must not be negative.")
        if options["owners"] < 1 and (options["tools"] or options["identities"]):
            raise CommandError("Tools and identities need at least one owner.")
        if options["identities"] < 1 and options["credentials"]:
            raise CommandError("Credentials need identities.")
        if (options["tools"] < 1 and options["identities"]) or (options["grants"] and not options["scopes"]):
            raise CommandError("Identities need tools to sit behind, and grants need scopes.")
        teams = options["teams"] if options["teams"] is not None else min(60, max(3, options["tools"] // 200))
        postgres = connection.vendor == "postgresql"
        write = copy_rows if postgres else bulk_create_rows
        started = time.perf_counter()
        rng = random.Random(options["seed"])

        with transaction.atomic():
            if options["reset"]:
                self._truncate(postgres)
            elif any(model._default_manager.exists() for model in SEEDED_MODELS):
                raise CommandError("The inventory is not empty. Pass --reset to truncate it first (bench databases).")
            owners = self._owners(rng, options["owners"])
            sizes = {name: options[name] for name in ("tools", "identities", "credentials", "scopes", "grants")}
            estate = Estate(rng=rng, owners=owners, teams=teams, **sizes)
            self.stdout.write(f"{'owners':<22} {len(owners):>10,}  {time.perf_counter() - started:6.1f}s")
            with secondary_indexes_deferred(SEEDED_MODELS) if postgres else nullcontext():
                for model, fields, rows in estate.tables():
                    step = time.perf_counter()
                    written = write(model, fields, rows)
                    label = model._meta.db_table.removeprefix("inventory_")
                    self.stdout.write(f"{label:<22} {written:>10,}  {time.perf_counter() - step:6.1f}s")
                step = time.perf_counter()
            if postgres:
                self.stdout.write(f"{'indexes':<22} {'':>10}  {time.perf_counter() - step:6.1f}s")
            self._reset_sequences()
            step = time.perf_counter()
        self.stdout.write(f"{'commit':<22} {'':>10}  {time.perf_counter() - step:6.1f}s")

        step = time.perf_counter()
        self._analyze(postgres)
        self.stdout.write(f"{'analyze':<22} {'':>10}  {time.perf_counter() - step:6.1f}s")
        elapsed = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(f"Seeded the inventory in {elapsed:.1f}s on {connection.vendor}."))

    def _truncate(self, postgres: bool) -> None:
        models = seeded_and_dependent_models()
        tables = [connection.ops.quote_name(model._meta.db_table) for model in models]
        self.stdout.write(f"Clearing {len(tables)} tables: {', '.join(model._meta.db_table for model in models)}")
        with connection.cursor() as cursor:
            if postgres:
                # TRUNCATE refuses while foreign-key checks are queued (rows written earlier in this transaction).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                # The audit tables refuse TRUNCATE by trigger; a bench reset is the one place that means it, and only a
                # superuser may switch triggers off for its transaction (anyone else gets the trigger's refusal).
                cursor.execute("SET LOCAL session_replication_role = replica")
                # No CASCADE: a table pointing in that the models do not know about should stop the reset, not vanish.
                cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
                cursor.execute("SET LOCAL session_replication_role = DEFAULT")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            else:
                # Foreign keys are checked at commit, so the order of the deletes does not matter.
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")

    def _owners(self, rng: random.Random, count: int) -> list[int]:
        """Owner accounts by rank (rank 0 owns the most tools). Reused across resets; about 8% departed."""
        user_model = get_user_model()
        names = [f"{OWNER_PREFIX}{rank:04d}" for rank in range(count)]
        existing = set(user_model._default_manager.filter(username__in=names).values_list("username", flat=True))
        unusable = make_password(None)  # seed accounts cannot sign in with a password
        user_model._default_manager.bulk_create(
            [
                user_model(
                    username=name,
                    email=f"{name}@example.test",
                    password=unusable,
                    first_name=rng.choice(FIRST_NAMES),
                    last_name=rng.choice(LAST_NAMES),
                )
                for name in names
                if name not in existing
            ]
        )
        # Departed owners are spread through the tail, never the busiest ones, so each still owns a few things.
        departed = [name for rank, name in enumerate(names) if rank % 12 == 11]
        manager = user_model._default_manager
        manager.filter(username__in=names).exclude(username__in=departed).update(is_active=True)
        manager.filter(username__in=departed).update(is_active=False)
        ids = dict(manager.filter(username__in=names).values_list("username", "pk"))
        return [ids[name] for name in names]

    def _reset_sequences(self) -> None:
        statements = connection.ops.sequence_reset_sql(no_style(), list(SEEDED_MODELS))
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    def _analyze(self, postgres: bool) -> None:
        """Fresh statistics so the planner sees a million credentials, not the empty table it last sampled."""
        tables = [connection.ops.quote_name(model._meta.db_table) for model in SEEDED_MODELS]
        with connection.cursor() as cursor:
            if postgres and not connection.in_atomic_block:
                # VACUUM also sets the visibility map, as autovacuum would have in a live database,
                # so index-only scans in the benchmark behave as they would in production.
                cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
            elif postgres:
                cursor.execute(f"ANALYZE {', '.join(tables)}")
            else:
                cursor.execute("ANALYZE")
