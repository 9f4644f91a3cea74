"""The findings list's tool and owner filters, found by typing (issue 15: choices or autocomplete, not free-text
slugs). Each answers `?q=` with `{"results": [{"id", "label"}]}` for static/js/autocomplete.js, the picker of the tool
form (issue 17); the id is what the filter takes (a tool's slug, an owner's username), the label what a person reads.

Only what the reader may see: the tools visible to them, and the owners of those tools. Anyone who may read findings
may ask; a manager reads every tool.
"""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import JsonResponse

from inventory.models import AITool
from nhi_portal.decorators import portal_page

User = get_user_model()
LIMIT = 20
MAX_QUERY = 100


def _term(request) -> str:
    return request.GET.get("q", "").strip()[:MAX_QUERY]


def tool_label(name: str, slug: str) -> str:
    return f"{name} ({slug})" if name != slug else name


@portal_page
def tools(request):
    """Up to 20 tools the reader may see whose name or slug holds q, by name."""
    term = _term(request)
    found = AITool.objects.visible_to(request.user)
    if term:
        found = found.filter(Q(name__icontains=term) | Q(slug__icontains=term))
    rows = found.order_by("name", "slug").values_list("slug", "name")[:LIMIT]
    return JsonResponse({"results": [{"id": slug, "label": tool_label(name, slug)} for slug, name in rows]})


def owner_label(username: str, first: str, last: str) -> str:
    name = " ".join(part for part in (first, last) if part)
    return f"{username} ({name})" if name else username


@portal_page
def owners(request):
    """Up to 20 owners of tools the reader may see whose username or name holds q, by username."""
    term = _term(request)
    found = User.objects.filter(pk__in=AITool.objects.visible_to(request.user).order_by().values("owner_id"))
    if term:
        found = found.filter(Q(username__icontains=term) | Q(first_name__icontains=term) | Q(last_name__icontains=term))
    rows = found.order_by("username").values_list("username", "first_name", "last_name")[:LIMIT]
    return JsonResponse({"results": [{"id": row[0], "label": owner_label(*row)} for row in rows]})
