"""Portal roles are Django groups; this module is the one place that knows their names.

Anyone signed in may own tools. `security` sees and edits everything, `manager` reads everything
and edits nothing, `gateway` is a machine account that may only ask for authorization decisions
and report usage.
"""

from django.contrib.auth.models import AnonymousUser, User

SECURITY = "security"
MANAGER = "manager"
GATEWAY = "gateway"
ALL_ROLES = (SECURITY, MANAGER, GATEWAY)

_CACHE_ATTR = "_portal_roles"


def roles_of(user: User | AnonymousUser) -> frozenset[str]:
    """The portal roles of a user, read once per user object (one query per request)."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def remember(user: User, roles) -> None:
    """Record roles read together with the user (token authentication does), so roles_of needs no query."""
    setattr(user, _CACHE_ATTR, frozenset(roles))


def is_security(user) -> bool:
    return user.is_authenticated and (user.is_superuser or SECURITY in roles_of(user))


def is_manager(user) -> bool:
    return user.is_authenticated and MANAGER in roles_of(user) and not is_security(user)


def is_gateway(user) -> bool:
    """A gateway account: machine-only, kept out of the inventory pages and APIs."""
    return user.is_authenticated and GATEWAY in roles_of(user) and not is_security(user)


def sees_everything(user) -> bool:
    return is_security(user) or is_manager(user)


def may_use_portal(user) -> bool:
    """Signed-in humans: owners, security and managers. Gateways use the machine endpoints only."""
    return user.is_authenticated and user.is_active and not is_gateway(user)


def may_write(user) -> bool:
    """Managers read everything and change nothing; everyone else may write what they own."""
    return may_use_portal(user) and not is_manager(user)
