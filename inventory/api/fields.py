"""A related field that takes an object's id or its natural key (tool slug, identity name, username)."""

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers


class NaturalKeyRelatedField(serializers.RelatedField):
    """Reads an id or a natural key; writes the natural key or the id, as configured.

    The queryset is narrowed per request (see `scoped`), so a caller can only point at objects it
    may use, and an object it cannot see reads as "does not exist".
    """

    # Never the value itself: a secret pasted into the wrong field would come back in the answer.
    default_error_messages = {
        "does_not_exist": "No {model} with that id or {natural_key} that you can use.",
        "invalid": "Give an id or a {natural_key}.",
    }

    def __init__(self, *, natural_key: str, output: str = "pk", scoped=None, **kwargs):
        self.natural_key = natural_key
        self.output = output
        self.scoped = scoped
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if self.scoped is not None and request is not None:
            queryset = self.scoped(queryset, request.user)
        return queryset

    def to_internal_value(self, data):
        queryset = self.get_queryset()
        model = queryset.model._meta.verbose_name
        if isinstance(data, bool) or not isinstance(data, int | str) or data == "" or "\x00" in str(data):
            self.fail("invalid", natural_key=self.natural_key)
        numeric = isinstance(data, int) or (str(data).isascii() and str(data).isdigit())
        if numeric and not 0 < int(data) < 2**63:
            self.fail("does_not_exist", model=model, natural_key=self.natural_key)
        lookup = {"pk": int(data)} if numeric else {self.natural_key: data}
        try:
            return queryset.get(**lookup)
        except ObjectDoesNotExist:
            # A numeric natural key (an identity named "42") still resolves by name.
            if "pk" in lookup:
                found = queryset.filter(**{self.natural_key: str(data)}).first()
                if found is not None:
                    return found
            self.fail("does_not_exist", model=model, natural_key=self.natural_key)
        except (TypeError, ValueError, OverflowError):
            self.fail("invalid", natural_key=self.natural_key)

    def to_representation(self, value):
        return getattr(value, self.output)
