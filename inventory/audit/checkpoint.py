"""Verification checkpoints: where the last verification of a stream stopped, sealed with the seal key.

An incremental run resumes from the checkpoint (inventory/audit/verify.py), so its cost is what was sealed since. The
checkpoint is a row in the database, so it carries an HMAC under AUDIT_SEAL_KEY over everything it says: a database
writer who lacks the key cannot forge one that skips unverified batches. They can delete it or put back an older one,
which only makes the next run start earlier. What an incremental run does not do is re-hash entries verified before:
that is the full run's job (a background task, on a schedule and on request), which also rebuilds the checkpoints.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from inventory.audit.hashes import GENESIS, key_id, seal_keys
from inventory.models import AuditCheckpoint


@dataclass
class StreamState:
    """Where verification of one stream stands: after batch `seq` (digest, last id), `checked` entries so far."""

    seq: int = 0
    digest: str = GENESIS
    last_id: int = 0
    checked: int = 0
    anchor_position: int = 0
    open_watches: list[dict] = field(default_factory=list)


def checkpoint_mac(key: str, stream: str, state: StreamState, verified_at: datetime) -> str:
    watches = json.dumps(state.open_watches, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    message = (
        f"checkpoint:{stream};seq:{state.seq};digest:{state.digest};last:{state.last_id};checked:{state.checked};"
        f"anchor:{state.anchor_position};at:{verified_at.isoformat()};watches:{hashlib.sha256(watches.encode()).hexdigest()}"
    )
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def load(stream: str) -> tuple[StreamState, str | None]:
    """The stream's checkpoint, or the start of the chain; with a problem when a stored checkpoint does not verify
    (then verification starts from the beginning, as if there were none)."""
    row = AuditCheckpoint.objects.filter(stream=stream).first()
    if row is None:
        return StreamState(), None
    state = StreamState(
        row.batch_seq, row.batch_digest, row.last_id, row.checked, row.anchor_position, list(row.open_watches or [])
    )
    key = seal_keys().get(row.key_id)
    if key is None:
        return StreamState(), f"the verification checkpoint was made with key id {row.key_id}, which is not configured"
    if not hmac.compare_digest(checkpoint_mac(key, stream, state, row.verified_at), row.mac):
        return StreamState(), "the verification checkpoint was altered: verifying from the start"
    return state, None


def save(stream: str, state: StreamState) -> bool:
    """Store the checkpoint unless one further along is stored already (a full run that started before an incremental
    one finished must not move it back). Returns whether it was stored."""
    key = settings.AUDIT_SEAL_KEY
    now = timezone.now()
    with transaction.atomic():
        row = AuditCheckpoint.objects.select_for_update().filter(stream=stream).first()
        if row is not None and row.batch_seq > state.seq:
            current, problem = load(stream)
            if problem is None and current.seq > state.seq:
                return False
        values = {
            "batch_seq": state.seq,
            "batch_digest": state.digest,
            "last_id": state.last_id,
            "checked": state.checked,
            "anchor_position": state.anchor_position,
            "open_watches": state.open_watches,
            "verified_at": now,
            "key_id": key_id(key),
            "mac": checkpoint_mac(key, stream, state, now),
        }
        AuditCheckpoint.objects.update_or_create(stream=stream, defaults=values)
    return True
