"""Access control for server-rendered pages, from the portal roles. Deny by default."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from . import roles


def portal_page(view=None, *, write: bool = False):
    """Signed-in humans only (gateways are machines); `write` also keeps managers out. Deny by default."""

    def decorator(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            allowed = roles.may_write(request.user) if write else roles.may_use_portal(request.user)
            if not allowed:
                raise PermissionDenied
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view else decorator
