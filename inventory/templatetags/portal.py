"""Small template helpers for the list pages: sortable headers and ages."""

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context, field: str, label: str, target: str = "#results"):
    """A column header that toggles ?ordering=field / -field, keeps the other filters, and pushes the URL."""
    request = context["request"]
    current = request.GET.get("ordering", "")
    params = request.GET.copy()
    params.pop("page", None)
    if current == field:
        params["ordering"], arrow, aria = f"-{field}", " ▲", "ascending"
    elif current == f"-{field}":
        params["ordering"], arrow, aria = field, " ▼", "descending"
    else:
        params["ordering"], arrow, aria = field, "", "none"
    url = f"{request.path}?{params.urlencode()}"
    return format_html(
        '<th aria-sort="{}"><a href="{}" hx-get="{}" hx-target="{}" hx-swap="outerHTML" hx-push-url="true" '
        'hx-sync="#filters:replace">'
        "{}{}</a></th>",
        aria,
        url,
        url,
        target,
        label,
        arrow,
    )


@register.filter
def age_days(value) -> str:
    """Whole days since a moment, for 'age' and 'last used' columns."""
    if not value:
        return "never"
    days = (timezone.now() - value).days
    return "today" if days <= 0 else f"{days} d ago"
