from django.conf import settings
from django.db import models

from inventory.validators import refuse_control_characters


class Team(models.Model):
    """A group of people that runs AI tools; used to slice the inventory and posture."""

    name = models.CharField(max_length=120, unique=True, validators=[refuse_control_characters])
    slug = models.SlugField(max_length=120, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="portal_teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
