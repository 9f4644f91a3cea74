"""Access control for server-rendered pages, from the portal roles. Deny by default."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from . import roles

# Who may open a page, by the role it names. Every one of them is a signed-in human first (gateways are machines).
PAGE_ROLES: dict[str, Callable] = {
    "portal": roles.may_use_portal,  # anyone signed in: owners, security, managers
    "write": roles.may_write,  # managers read everything and change nothing
    "oversight": roles.sees_everything,  # security and managers: pages across every tool (compliance)
    "security": roles.is_security,  # the security team only: review, triage, scans, audit, attestations
}


def portal_page(view=None, *, role: str = "portal"):
    """Signed-in humans only, and of them only `role` (one of PAGE_ROLES); anyone else gets 403.

    An unknown role is refused when the view is declared, so a misspelt role can never open a page."""
    if role not in PAGE_ROLES:
        raise ValueError(f"unknown page role {role!r}; one of {', '.join(PAGE_ROLES)}")
    holds = PAGE_ROLES[role]

    def decorator(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not (roles.may_use_portal(request.user) and holds(request.user)):
                raise PermissionDenied
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view else decorator
