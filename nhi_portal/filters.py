"""The API's filter backend: a query parameter that names a filter but cannot be read is a 400.

django-filter reads `?third_party=maybe` or `?status=` as "no filter" and answers everything, and of a repeated
parameter it reads the last value only; either way a client's mistake returns another list than the one asked for,
silently. Here each value given for a typed filter (choice, boolean, date, number, ordering) must read as that type,
or the answer is a 400 in the shape of a bad body field: `{"third_party": ["..."]}`. Free-text filters take any
string, the empty one meaning no filter, as their schema (`type: string`) says.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from django_filters import BooleanFilter, CharFilter
from django_filters.filters import BaseCSVFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

UNREADABLE = "Give a value this filter reads, or leave the parameter out."


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors = {}
        for name, filter_ in filterset.filters.items():
            if any(_unreadable(filter_, name, raw) for raw in request.query_params.getlist(name)):
                errors[name] = [UNREADABLE]
        if errors:
            raise ValidationError(errors)
        return filterset


def _unreadable(filter_, name: str, raw: str) -> bool:
    if isinstance(filter_, CharFilter):
        return False
    if raw == "":
        # An empty list (`?ordering=`) is a list; an empty choice, date or boolean is none.
        return not isinstance(filter_, BaseCSVFilter)
    if isinstance(filter_, BooleanFilter):
        # As the schema's `type: boolean` is written in a query; the widgets also read "2", "3", "1" or "0".
        return raw.lower() not in ("true", "false")
    field = filter_.field
    one = QueryDict(mutable=True)
    one[name] = raw
    try:
        field.clean(field.widget.value_from_datadict(one, {}, name))
    except DjangoValidationError:
        return True
    return False
