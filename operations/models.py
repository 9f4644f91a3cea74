from django.conf import settings
from django.db import models


class SsoIdentity(models.Model):
    """Which portal user an identity provider's subject is: the link single sign-on finds users by.

    By (issuer, subject), the one pair OpenID Connect promises is stable and never reassigned, rather than by e-mail
    or username, which a user or an administrator at the provider may change or reuse for someone else."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class TokenUse(models.Model):
    """When an API token last authenticated a request, to within `token_use.RECORD_EVERY` (operations/token_use.py).

    Beside knox's token rather than on it (knox's model has no such column), one row per token that was ever used;
    it goes with its token."""

    token = models.OneToOneField("knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="use")
    last_used_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token {self.token_id[:16]} last used at {self.last_used_at:%Y-%m-%d %H:%M}"
