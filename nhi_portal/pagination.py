from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination


class PortalPagination(PageNumberPagination):
    """`?page=` and `?page_size=` (1 to 500; more is served as 500).

    DRF's own class serves a page size it cannot read (`?page_size=abc`, `0`, `-3`) at the default size, and `?page=`
    as page 1; here the first is a 400 like any other bad parameter and the second DRF's 404 for a page that does not
    exist, so a client's mistake shows instead of a silently different page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_page_size_message = "A whole number from 1; at most {max} rows are served."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            message = self.invalid_page_size_message.format(max=self.max_page_size)
            raise ValidationError({self.page_size_query_param: [message]})
        return min(int(raw), self.max_page_size)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if raw in self.last_page_strings:
            return paginator.num_pages
        if not (raw.isascii() and raw.isdigit()):
            raise NotFound(self.invalid_page_message)
        return raw

    def get_schema_operation_parameters(self, view):
        page, page_size = super().get_schema_operation_parameters(view)
        page["schema"] = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["last"]}]}
        page["description"] = "A page number from 1, or `last`; a page past the end is 404."
        page_size["schema"] = {"type": "integer", "minimum": 1}
        most = self.max_page_size
        page_size["description"] = f"Rows per page, default {self.page_size}; more than {most} is served as {most}."
        return [page, page_size]
