"""One module per detector. Importing this package registers them all."""

from . import (  # noqa: F401
    credential_expiring,
    credential_not_rotated,
    credential_stale,
    fact_change_unreviewed,
    grant_unused,
    identity_env_mixed,
    identity_human_use,
    identity_orphaned,
    identity_reused,
    secret_exposed,
    third_party_unreviewed,
    tool_unmediated,
)
