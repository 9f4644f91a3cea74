"""Search every text column of every table for a string: the proof that a secret was never persisted."""

from django.apps import apps
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast


def rows_containing(needle: str) -> list[str]:
    """The `app.Model.field` names whose stored text contains `needle` (JSON compared as text)."""
    hits = []
    for model in apps.get_models():
        manager = model._default_manager
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField):
                found = manager.filter(Q(**{f"{field.name}__contains": needle})).exists()
            elif isinstance(field, models.JSONField):
                found = manager.annotate(_t=Cast(field.name, models.TextField())).filter(_t__contains=needle).exists()
            else:
                continue
            if found:
                hits.append(f"{model._meta.label}.{field.name}")
    return hits
