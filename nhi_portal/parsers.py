"""Request parsers. JSON that no database can store, or that nests deep enough to exhaust the interpreter's stack, is
refused at the edge as a 400."""

import codecs
from itertools import accumulate, repeat

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

# Far beyond any document the API takes (an import row nests four levels), far below the ~1,000 frames at which
# Python's JSON decoder, and every recursive walk over its result after it, raise RecursionError.
MAX_DEPTH = 64

# Everything but the brackets, among the ASCII characters; the few non-ASCII ones left over count as 0 below.
_NOT_BRACKETS = {code: None for code in range(128) if chr(code) not in "[]{}"}
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_CHUNK = 1 << 20  # brackets counted per step: bounds the memory the scan of a large body takes


def nesting_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether a JSON text opens more than `limit` arrays or objects inside each other, found without recursion.

    Brackets inside strings are dropped first: with escaped backslashes and then escaped quotes removed (left to
    right, as JSON reads escapes), every other quote opens a string. The running count of the brackets left is the
    decoder's recursion depth wherever the text is well formed, and the decoder stops at the first place it is not,
    so the count is never lower than the depth it would reach. Each step is one pass of a C builtin over the text:
    the scan costs about what decoding does.
    """
    if text.count("[") + text.count("{") <= limit:  # brackets inside strings only make this an overestimate
        return False
    outside_strings = "".join(text.replace("\\\\", "").replace('\\"', "").split('"')[::2])
    brackets = outside_strings.translate(_NOT_BRACKETS)
    depth = 0
    for start in range(0, len(brackets), _CHUNK):
        steps = map(_STEP.get, brackets[start : start + _CHUNK], repeat(0))
        running = list(accumulate(steps, initial=depth))
        if max(running) > limit:
            return True
        depth = running[-1]
    return False


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
    store it, and the write would fail as a 500 after validation had passed. It also allows any depth, and a body of
    a few kilobytes of "[" made every endpoint answer 500 (RecursionError) before the depth check here."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})  # text codecs only: no bz2 bomb behind a small body
        try:
            text = codecs.getreader(encoding)(stream).read()
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if nesting_depth_exceeds(text):
            raise ParseError(f"JSON parse error - arrays and objects may nest at most {MAX_DEPTH} levels deep.")
        try:
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - strings must be valid Unicode (a lone surrogate was sent).")
        return data
