"""Live pulls (issue 14): a scheduled job fetches what a file import would be given, from the provider's API, and
applies it through the same sync (`sync.source_import`): the same run, counts, audit, provenance, gone-at-source and
targeted detection after commit. A pull is the file import a person would have done, done by beat.

- Off unless `SOURCE_PULLS` names accounts (see `config`); beat's `pull-discovery-sources` then queues one task per
  account, so a slow provider holds up only its own pull.
- Runs are recorded under `SOURCE_PULL_ACTOR`, an active security user, as file imports are under whoever ran them:
  imports are security's act, and a pull with nobody accountable for it is refused.
- A pull that fails (provider unreachable, refused, a document the parser rejects) changes nothing; it is logged and
  audited as `source.pull_failed` with the cause, never a credential or the provider's body.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from inventory.models import AuditEntry
from nhi_portal import roles

from ..records import SourceRejected
from ..sync import source_import
from .config import AWS_KINDS, PullConfig, pull_configs
from .errors import PullFailed

logger = logging.getLogger(__name__)
PULLED, FAILED = "pulled", "failed"
PULL_UNCHANGED = "source.pull_unchanged"
__all__ = ["PULL_UNCHANGED", "PullFailed", "PullOutcome", "pull_configs", "source_pull"]


@dataclass
class PullOutcome:
    name: str
    outcome: str
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "outcome": self.outcome, "detail": self.detail, **self.result}


def _actor():
    username = settings.SOURCE_PULL_ACTOR
    if not username:
        raise PullFailed("SOURCE_PULL_ACTOR is not set: pulls are recorded under a named security user.")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or not roles.is_security(user):
        raise PullFailed(f"SOURCE_PULL_ACTOR {username!r} is not an active security user.")
    return user


def _fetch(config: PullConfig) -> bytes:
    if config.kind in AWS_KINDS:
        from .aws import fetch_credential_report

        return fetch_credential_report(config.options)
    from .github import fetch_org_list

    return fetch_org_list(config.kind, config.options)


def source_pull(*, name: str, dry_run: bool = False) -> PullOutcome:
    """Fetch one configured account's list and import it; a failure is an outcome (logged, audited), not a raise."""
    config = None
    try:
        config = pull_configs().get(name)
        if config is None:
            raise PullFailed("No such pull in SOURCE_PULLS.")
        actor = _actor()
        raw = _fetch(config)
        result = source_import(actor=actor, kind=config.kind, raw=raw, dry_run=dry_run, full=config.full,
                               account=config.account, origin=f"pull:{name}")  # fmt: skip
    except SourceRejected as rejected:
        first = rejected.errors[0] if rejected.errors else {}
        where = first.get("line") or first.get("path") or "the document"
        detail = f"The provider's answer was rejected: {len(rejected.errors)} error(s), first at {where}: " + str(
            first.get("message", "")
        )
        return _failed(name, config, detail)
    except PullFailed as failure:
        return _failed(name, config, failure.message)
    except Exception as error:
        # Every failure is an outcome, audited; its text may hold a provider's body or a credential: only its kind.
        return _failed(name, config, f"The pull failed unexpectedly ({type(error).__name__}).")
    logger.info("source pull %s (%s %s): run %s", name, config.kind, config.account, result.run)
    if result.run is None and not dry_run:
        # Nothing changed, so no run was written (an unchanged source writes nothing); the Sources page still needs to
        # know the source was read, or a pull that works would look as stale as one that stopped.
        AuditEntry.objects.create(
            actor=actor, actor_label=actor.get_username(), action=PULL_UNCHANGED, object_type="source_pull",
            object_id=name[:64], object_repr=f"pull {name}"[:255],
            after={"kind": config.kind, "account": config.account},
        )  # fmt: skip
    return PullOutcome(name=name, outcome=PULLED, result=result.as_dict())


def _failed(name: str, config: PullConfig | None, detail: str) -> PullOutcome:
    logger.warning("source pull %s failed: %s", name, detail)
    AuditEntry.objects.create(
        actor=None, actor_label="source-pull", action="source.pull_failed", object_type="source_pull",
        object_id=name[:64], object_repr=f"pull {name}"[:255],
        after={"kind": config.kind if config else None, "account": config.account if config else None,
               "error": detail},
    )  # fmt: skip
    return PullOutcome(name=name, outcome=FAILED, detail=detail)
