"""Single sign-on with OpenID Connect: mozilla-django-oidc's code flow, with the portal's rules for who the user is
and which roles they hold.

mozilla-django-oidc rather than django-allauth: one authentication backend and three views doing the standard
authorization code flow (with PKCE and nonce), nothing else to install or migrate (allauth brings its account
models, templates and a dozen providers' adapters the portal does not need), and a hook for RP-initiated logout.

What this module adds to the library:
- The ID token's issuer and audience are checked (the library checks the signature, expiry and nonce, not these):
  a token the provider minted for another client is refused.
- Users are found by (issuer, subject) through `SsoIdentity`, never by e-mail (the library's default, which lets
  whoever can set an e-mail at the provider become the portal user who has it). The first sign-in creates the user,
  named by the OIDC_USERNAME_CLAIM claim; a local user of that name is linked only with OIDC_LINK_EXISTING_USERS.
- Every sign-in sets the user's portal roles (security, manager, gateway: `nhi_portal.roles`) from the groups claim
  (OIDC_GROUPS_CLAIM), mapped by OIDC_ROLE_GROUPS, so a change at the provider takes effect at the next sign-in.
  Creation and every role change are audit entries.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from inventory.audit.record import audit_record
from nhi_portal import roles

from .models import SsoIdentity

logger = logging.getLogger(__name__)


def sso_enabled() -> bool:
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def roles_from_claims(claims: dict) -> set[str]:
    """The portal roles the groups claim grants, by OIDC_ROLE_GROUPS ({role: [group names]})."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        return set()
    held = {group for group in groups if isinstance(group, str)}
    return {role for role, names in settings.OIDC_ROLE_GROUPS.items() if role in roles.ALL_ROLES and held & set(names)}


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        if payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation("The ID token's issuer is not the configured provider.")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token was not issued to this portal.")
        if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("The ID token names another authorized party.")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):  # OpenID Connect Core 5.3.2: they must be the same subject
            raise SuspiciousOperation("The userinfo answer is about another subject than the ID token.")
        claims = payload | userinfo
        with transaction.atomic():
            link = (
                SsoIdentity.objects.select_for_update()
                .select_related("user")
                .filter(issuer=payload["iss"], subject=payload["sub"])
                .first()
            )
            if link is None:
                link = self._first_sign_in(claims, issuer=payload["iss"])
                if link is None:
                    return None
            user = link.user
            self._update_profile(user, claims)
            self._set_roles(user, roles_from_claims(claims))
            link.last_sign_in_at = timezone.now()
            link.save(update_fields=["last_sign_in_at"])
        return user

    def _first_sign_in(self, claims: dict, *, issuer: str) -> SsoIdentity | None:
        username = claims.get(settings.OIDC_USERNAME_CLAIM)
        user_model = get_user_model()
        try:
            user_model._meta.get_field("username").run_validators(username)
            if not isinstance(username, str) or not username:
                raise ValidationError("empty")
        except (ValidationError, TypeError):
            logger.warning("SSO sign-in refused: the %s claim is not a valid username", settings.OIDC_USERNAME_CLAIM)
            return None
        user = user_model.objects.filter(username=username).first()
        if user is not None and not settings.OIDC_LINK_EXISTING_USERS:
            logger.warning("SSO sign-in refused: a local user already has the username %s", username)
            return None
        if user is None:
            user = user_model.objects.create_user(username, email=claims.get("email") or "")
            user.set_unusable_password()
            user.save(update_fields=["password"])
            audit_record(actor=user, action="user.created_by_sso", obj=user, after={"username": username})
        else:
            audit_record(actor=user, action="user.linked_to_sso", obj=user, after={"issuer": issuer})
        return SsoIdentity.objects.create(user=user, issuer=issuer, subject=claims["sub"])

    def _update_profile(self, user, claims: dict) -> None:
        fields = {
            "email": claims.get("email"),
            "first_name": claims.get("given_name"),
            "last_name": claims.get("family_name"),
        }
        changed = []
        for field, value in fields.items():
            if isinstance(value, str) and value != getattr(user, field):
                setattr(user, field, value[: user._meta.get_field(field).max_length])
                changed.append(field)
        if changed:
            user.save(update_fields=changed)

    def _set_roles(self, user, wanted: set[str]) -> None:
        held = set(user.groups.filter(name__in=roles.ALL_ROLES).values_list("name", flat=True))
        if held == wanted:
            return
        user.groups.remove(*Group.objects.filter(name__in=held - wanted))
        user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in sorted(wanted - held)))
        roles.remember(user, wanted)
        audit_record(
            actor=user,
            action="user.roles_from_sso",
            obj=user,
            before={"roles": sorted(held)},
            after={"roles": sorted(wanted)},
            comment=f"from the {settings.OIDC_GROUPS_CLAIM} claim",
        )


class PermissionsOnlyBackend(ModelBackend):
    """In place of ModelBackend when PASSWORD_LOGIN_ENABLED is off: the same permissions (the admin asks for them),
    and no password sign-in anywhere, the admin's login page included."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        return None
