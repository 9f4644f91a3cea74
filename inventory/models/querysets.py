"""Permission-scoped querysets: every read starts from `.visible_to(user)`, every write from `.editable_by(user)`.

Forgetting a check therefore shows nothing rather than everything. Scoping is SQL (joins and
subqueries), never Python lists of ids.
"""

from django.db import models
from django.db.models import Q

from nhi_portal import roles


class ToolQuerySet(models.QuerySet):
    def visible_to(self, user):
        if not roles.may_use_portal(user):
            return self.none()
        if roles.sees_everything(user):
            return self
        return self.filter(owner=user)

    def editable_by(self, user):
        if not roles.may_write(user):
            return self.none()
        if roles.is_security(user):
            return self
        return self.filter(owner=user)


def tool_visible_to(user, tool) -> bool:
    """The in-memory twin of `ToolQuerySet.visible_to` for one tool already read."""
    return roles.may_use_portal(user) and (roles.sees_everything(user) or tool.owner_id == user.pk)


def owner_may_edit(user, obj) -> bool:
    """The in-memory twin of `editable_by` for tools and identities: security, or a writer who owns it."""
    return roles.is_security(user) or (roles.may_write(user) and obj.owner_id == user.pk)


class IdentityQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Owners see identities they own and the ones behind tools they own."""
        if not roles.may_use_portal(user):
            return self.none()
        if roles.sees_everything(user):
            return self
        from .tools import ToolIdentity

        # Uncorrelated, so PostgreSQL hashes the owner's bindings once instead of probing them per identity.
        behind_own_tool = ToolIdentity.objects.filter(tool__owner=user).values("identity_id")
        return self.filter(Q(owner=user) | Q(pk__in=behind_own_tool))

    def editable_by(self, user):
        if not roles.may_write(user):
            return self.none()
        if roles.is_security(user):
            return self
        return self.filter(owner=user)


class _ByIdentityQuerySet(models.QuerySet):
    """Credentials and grants are visible and editable exactly as their identity is."""

    def visible_to(self, user):
        from .identities import ServiceIdentity

        if roles.sees_everything(user):
            return self if roles.may_use_portal(user) else self.none()
        return self.filter(identity__in=ServiceIdentity.objects.visible_to(user).values("pk"))

    def editable_by(self, user):
        from .identities import ServiceIdentity

        if roles.is_security(user):
            return self
        return self.filter(identity__in=ServiceIdentity.objects.editable_by(user).values("pk"))


class CredentialQuerySet(_ByIdentityQuerySet):
    pass


class GrantQuerySet(_ByIdentityQuerySet):
    def active(self, *, at=None):
        from django.utils import timezone

        at = at or timezone.now()
        return self.filter(status="active").filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
