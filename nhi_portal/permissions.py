"""DRF permissions built on the portal roles. Object scoping lives in querysets, not here."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import roles


class IsPortalUser(BasePermission):
    """Default for every endpoint: a signed-in human; managers read only. Deny by default."""

    def has_permission(self, request, view) -> bool:
        if not roles.may_use_portal(request.user):
            return False
        return request.method in SAFE_METHODS or roles.may_write(request.user)


class IsSecurity(BasePermission):
    def has_permission(self, request, view) -> bool:
        return roles.is_security(request.user)


class IsGatewayOrSecurity(BasePermission):
    """Machine endpoints: gateway accounts and the security team."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return user.is_authenticated and user.is_active and (roles.is_gateway(user) or roles.is_security(user))
