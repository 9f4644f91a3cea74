"""Pagination for the HTML list pages: the page asked for, and the query string its pager keeps."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

PAGE_SIZES = (25, 50, 100)


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP rows: an exact COUNT(*) over 100,000 identities costs more than the page itself.
    Pages show "10,000+" beyond the cap; the API keeps exact counts (part of its contract)."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.COUNT_CAP


def page_size(request, sizes: tuple[int, ...] = PAGE_SIZES) -> int:
    """The `page_size` the URL asks for if it is one of `sizes`, else the first of them."""
    try:
        size = int(request.GET.get("page_size", sizes[0]))
    except ValueError:
        return sizes[0]
    return size if size in sizes else sizes[0]


def paged(request, object_list, *, per_page: int, paginator: type[Paginator] = Paginator) -> dict:
    """Context for a paged list: `page`, and `query`, every other parameter of the URL (filters, ordering, size), so
    that `_partials/pager.html` moves through the same list."""
    query = request.GET.copy()
    query.pop("page", None)
    return {"page": paginator(object_list, per_page).get_page(request.GET.get("page")), "query": query.urlencode()}
