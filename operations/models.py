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
