"""Request parsers. JSON may carry strings that no database can store; they are refused at the edge as a 400."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _has_lone_surrogate(value) -> bool:
    # Iterative: an import document can nest deep enough to make recursion the failure.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class StrictJSONParser(JSONParser):
    """JSON allows "\\ud800" (a lone UTF-16 surrogate), which is not Unicode text: PostgreSQL and SQLite refuse to
    store it, and the write would fail as a 500 after validation had passed."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - strings must be valid Unicode (a lone surrogate was sent).")
        return data
