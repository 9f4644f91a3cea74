"""Keys, hashes and id ranges of the audit chain (inventory/sealing.py seals and verifies with them)."""

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

GENESIS = "0" * 64
_KEY_ID_PREFIX = b"nhi-portal audit seal key id\x00"


# Keys ---------------------------------------------------------------------------------------------------------------


def key_id(key: str) -> str:
    """Names a seal key in batches and anchor records without revealing it."""
    return hashlib.sha256(_KEY_ID_PREFIX + key.encode()).hexdigest()[:16]


def seal_keys() -> dict[str, str]:
    """Key id to key: the current key and the retired ones that still verify what they sealed."""
    old = getattr(settings, "AUDIT_SEAL_OLD_KEYS", None) or []
    if isinstance(old, str):
        old = old.split(",")
    keys = {key_id(key): key for key in (k.strip() for k in old) if key}
    keys[key_id(settings.AUDIT_SEAL_KEY)] = settings.AUDIT_SEAL_KEY
    return keys


# Hashing ------------------------------------------------------------------------------------------------------------


def row_columns(model) -> list[str]:
    """What an entry's leaf hash covers: every column."""
    return [f.attname for f in model._meta.concrete_fields]


def leaf_hash(row: dict, *, legacy: bool = False) -> str:
    """SHA-256 of an entry's content. The id is bound in by the batch digest, so moved content is recognisable.

    Empty (NULL) columns are left out, so that adding a nullable column to the table later leaves every sealed leaf
    as it was; a value changed to or from NULL still changes the leaf. `legacy`: batches sealed before key ids
    existed hashed every column, NULLs included."""
    content = {k: v for k, v in row.items() if k != "id" and (legacy or v is not None)}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def batch_digest(prev_digest: str, leaves: list[tuple[int, str]], key: str | None = None) -> str:
    """The digest of batches sealed before key ids existed: HMAC-SHA256 over the previous digest and the leaves.

    Keyed from the environment: someone who can write to the database but does not hold the key cannot re-seal
    entries they changed."""
    h = hmac.new((key or settings.AUDIT_SEAL_KEY).encode(), prev_digest.encode(), hashlib.sha256)
    for pk, leaf in leaves:
        h.update(f"{pk}:{leaf}".encode())
    return h.hexdigest()


def range_digest(key: str, prev_digest: str, first_id: int, last_id: int, missing: list, leaves) -> str:
    """The digest of a batch: HMAC-SHA256 over the previous digest, the id range, its absent ids and the leaves."""
    h = hmac.new(key.encode(), prev_digest.encode(), hashlib.sha256)
    h.update(f"range:{first_id}-{last_id};missing:{json.dumps(missing, separators=(',', ':'))};".encode())
    for pk, leaf in leaves:
        h.update(f"{pk}:{leaf}".encode())
    return h.hexdigest()


# Id ranges ----------------------------------------------------------------------------------------------------------


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Ascending ids as [first, last] runs: ids come in long runs, so this stays small."""
    runs: list[list[int]] = []
    for pk in ids:
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


def expand_ranges(runs: Iterable[Iterable[int]]) -> Iterator[int]:
    for first, last in runs:
        yield from range(first, last + 1)


def id_gaps(first_id: int, last_id: int, ids: list[int]) -> list[list[int]]:
    """The ids of first_id..last_id that are not in `ids` (ascending, inside the range), as runs."""
    gaps, expected = [], first_id
    for pk in ids:
        if pk > expected:
            gaps.append([expected, pk - 1])
        expected = pk + 1
    if expected <= last_id:
        gaps.append([expected, last_id])
    return gaps
