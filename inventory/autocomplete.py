"""Pickers for forms over tens of thousands of rows: users and identities found by typing, not listed in full.

A widget renders only the options already chosen (so the page does not carry every user and identity) and names a
small JSON endpoint that static/js/autocomplete.js asks as the user types; the form field keeps its queryset, so a
submitted id is still checked against what the user may pick (one query for the ids sent). The endpoints answer the
same choices the form allows: active users for anyone who may write, the identities the user may edit.
"""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import JsonResponse
from django.urls import reverse_lazy

from inventory.models import ServiceIdentity
from nhi_portal.decorators import portal_page

User = get_user_model()
LIMIT = 20
MAX_QUERY = 100


class _ChosenOnly:
    """Render the chosen options only: the full choice list is what made the form 13 s and 3 MB."""

    source = ""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        # Resolved when rendered: the forms are imported while the URLconf itself is still loading.
        context["widget"]["attrs"]["data-autocomplete"] = str(self.source)
        return context

    def optgroups(self, name, value, attrs=None):
        chosen = [v for v in (value or []) if v not in (None, "")]
        field_queryset = getattr(self.choices, "queryset", None)
        if not chosen or field_queryset is None:
            return []
        ids = []
        for item in chosen:
            try:
                ids.append(int(str(item)))
            except ValueError:
                continue
        options = []
        for index, obj in enumerate(field_queryset.filter(pk__in=ids)):
            label = self.choices.field.label_from_instance(obj)
            options.append(self.create_option(name, obj.pk, label, True, index, attrs=attrs))
        return [(None, options, 0)]

    def format_value(self, value):
        if value is None:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [str(v) for v in values if v is not None and v != ""]


class UserPicker(_ChosenOnly, forms.Select):
    source = reverse_lazy("inventory:autocomplete_users")


class UsersPicker(_ChosenOnly, forms.SelectMultiple):
    source = reverse_lazy("inventory:autocomplete_users")


class IdentitiesPicker(_ChosenOnly, forms.SelectMultiple):
    source = reverse_lazy("inventory:autocomplete_identities")


def _term(request) -> str:
    return request.GET.get("q", "").strip()[:MAX_QUERY]


@portal_page(role="write")
def users(request):
    """`?q=` → `{"results": [{"id", "label"}]}`: up to 20 active users whose username, name or e-mail holds q."""
    term = _term(request)
    found = User.objects.filter(is_active=True)
    if term:
        found = found.filter(
            Q(username__icontains=term) | Q(first_name__icontains=term) | Q(last_name__icontains=term)
            | Q(email__icontains=term)
        )  # fmt: skip
    rows = found.order_by("username").values_list("pk", "username", "first_name", "last_name")[:LIMIT]
    results = []
    for pk, username, first, last in rows:
        name = " ".join(part for part in (first, last) if part)
        results.append({"id": pk, "label": f"{username} ({name})" if name else username})
    return JsonResponse({"results": results})


@portal_page(role="write")
def identities(request):
    """`?q=` → `{"results": [{"id", "label"}]}`: up to 20 identities the user may bind whose name holds q."""
    term = _term(request)
    found = ServiceIdentity.objects.editable_by(request.user)
    if term:
        found = found.filter(name__icontains=term)
    rows = found.order_by("name").values_list("pk", "name")[:LIMIT]
    return JsonResponse({"results": [{"id": pk, "label": name} for pk, name in rows]})
