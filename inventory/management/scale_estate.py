"""The benchmark estate (manage.py seed_scale): believable tools, identities, credentials and grants, drawn from one
seeded random generator, as rows in each model's column order. The same arguments give the same estate."""

import random
import time
from array import array
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import accumulate

from django.db.models import Model
from django.utils.text import slugify

from inventory.fingerprints import FINGERPRINT_PREFIX
from inventory.management.scale_words import (
    CREDENTIAL_KINDS,
    DOMAINS,
    EXTERNAL_IDS,
    IDENTITY_ABBREVIATIONS,
    PROVIDERS,
    RESOURCE_PATTERNS,
    TEAM_SUFFIXES,
    TOOL_TASKS,
    TOOL_WORDS,
    VENDORS,
)
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


def _uniform_between(rng: random.Random, start: float, end: float) -> float:
    return start + rng.random() * max(end - start, 0.0)
