"""API token authentication in plain Python: the readable specification of the token lookup statement
(`authentication._lookup`) and of the check around it (`authentication.TokenAuthentication.authenticate_credentials`).

A presented token authenticates its user when, in this order:

- it is ASCII text with nothing unprintable (a NUL or another control character is refused before any query);
- a stored token has the key it starts with (its first `TOKEN_KEY_LENGTH` characters);
- that stored token's digest is the hash of the whole presented token (knox's `hash_token`);
- that stored token has not expired (no expiry, or one later than now);
- its user is active.

It then answers for that user, with the user's portal roles (their groups named in `roles.ALL_ROLES`). Every refusal
but the inactive user's reads "Invalid token." to the caller. tests/test_token_lookup_reference.py holds the statement
and the check equal to this module over generated tokens, for every outcome.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS

from . import roles

VALID, MALFORMED, UNKNOWN, WRONG_DIGEST, EXPIRED, INACTIVE_USER = (
    "valid", "malformed", "unknown", "wrong_digest", "expired", "inactive_user",
)  # fmt: skip
OUTCOMES = (VALID, MALFORMED, UNKNOWN, WRONG_DIGEST, EXPIRED, INACTIVE_USER)


@dataclass(frozen=True)
class Answer:
    outcome: str
    user: int | None = None
    roles: frozenset[str] = frozenset()


@dataclass
class World:
    """Stored tokens (`token_key`, `digest`, `expiry`, `user_id`), users by id (`is_active`), and group memberships
    as (user id, group name)."""

    now: datetime
    tokens: list = field(default_factory=list)
    users: dict = field(default_factory=dict)
    groups: set[tuple[int, str]] = field(default_factory=set)

    @classmethod
    def from_database(cls, now: datetime) -> "World":
        """Everything, read through the ORM (never through the statement under test). For small worlds: tests."""
        user_model = get_user_model()
        return cls(
            now=now,
            tokens=list(get_token_model().objects.all()),
            users={user.pk: user for user in user_model.objects.all()},
            groups=set(user_model.groups.through.objects.values_list("user", "group__name")),
        )


def authenticate_reference(world: World, presented: bytes) -> Answer:
    """What authenticating with `presented` (the token as it came after "Token ") answers in this world."""
    try:
        token = presented.decode("ascii")
    except UnicodeDecodeError:
        return Answer(MALFORMED)
    if not token.isprintable():
        return Answer(MALFORMED)
    keyed = [t for t in world.tokens if t.token_key == token[: CONSTANTS.TOKEN_KEY_LENGTH]]
    if not keyed:
        return Answer(UNKNOWN)
    matching = [t for t in keyed if t.digest == hash_token(token)]
    if not matching:
        return Answer(WRONG_DIGEST)
    live = [t for t in matching if t.expiry is None or t.expiry > world.now]
    if not live:
        return Answer(EXPIRED)
    user = world.users[live[0].user_id]
    if not user.is_active:
        return Answer(INACTIVE_USER, user.pk)
    held = frozenset(name for user_id, name in world.groups if user_id == user.pk and name in roles.ALL_ROLES)
    return Answer(VALID, user.pk, held)
