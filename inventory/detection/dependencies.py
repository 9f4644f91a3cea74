"""What each detector depends on, for targeted runs (issue 18): the topics of the changes (inventory.changes) after
which it is re-run on the changed subjects. A detector declares its own (`Detector.depends_on`); this table covers
the ones written before that field, and a detector found in neither depends on every change, which is never wrong,
only slower."""

from . import registry

# Kinds of topic; a detector's dependency is a kind, or "kind.field" for one field of it.
TOPIC_KINDS = ("tool", "identity", "credential", "grant", "usage", "source")

DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "ai_tool_unregistered": ("identity", "source"),
    "credential_expiring": ("credential",),
    "credential_not_rotated": ("credential",),
    "credential_stale": ("credential", "usage", "source"),
    "credential_use_unknown": ("credential", "usage", "source"),
    "fact_change_unreviewed": ("tool", "identity", "credential"),
    "grant_unapproved": ("grant",),
    "grant_unused": ("grant", "usage", "tool.status", "tool.identities"),
    "identity_env_mixed": ("identity", "tool.environment", "tool.status", "tool.identities"),
    "identity_human_use": ("identity", "source"),
    "identity_orphaned": ("identity", "tool.status", "tool.identities", "usage"),
    "identity_reused": ("identity", "credential", "tool.status", "tool.identities"),
    "secret_exposed": ("credential", "tool.connector_config"),
    "source_key_exposed": ("source", "credential"),
    "source_legacy_token": ("source", "credential"),
    "source_pat_no_expiry": ("source", "credential"),
    "source_root_key_active": ("source", "credential"),
    "source_secret_expiring": ("source", "credential"),
    "source_two_active_keys": ("source", "credential", "identity"),
    "third_party_unreviewed": ("identity",),
    "tool_unmediated": ("tool", "grant", "usage"),
}


def depends_on(detector: registry.Detector) -> tuple[str, ...]:
    return detector.depends_on or DEPENDS_ON.get(detector.key) or TOPIC_KINDS


def _touches(dependency: str, topic: str) -> bool:
    """A dependency on "credential" covers a change to "credential.storage"; a change to "tool" (fields unknown)
    covers a dependency on "tool.status"."""
    return topic == dependency or topic.startswith(f"{dependency}.") or dependency.startswith(f"{topic}.")


def affected(topics: set[str]) -> list[registry.Detector]:
    """The detectors a change with these topics can open or clear findings for, in key order."""
    return [d for d in registry.all_detectors() if any(_touches(dep, t) for dep in depends_on(d) for t in topics)]
