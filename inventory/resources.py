"""Resource constraints on grants: patterns where `*` matches any run of characters.

`project:payments/*` allows `project:payments/api` and `project:payments/api/v2`, not `project:billing/x`.
A constraint without `*` allows exactly that resource. An empty constraint allows any resource.

A resource is matched in its canonical form (`canonical_resource`): what a gateway sends may be percent-encoded,
use fullwidth or other compatibility characters, or Windows separators, and the system behind the gateway will
read `%2e%2e/`, fullwidth dots `..\\` as `../`. Canonicalising first, and refusing anything that still steps out of a
prefix, means the pattern is matched against what the resource really is. Authorize binds the canonical form into
its SQL, so the database and this module match the same text.
"""

import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote

# A segment of dots (and spaces, which Windows drops from the end of a name), also with path parameters (`..;x`)
# or ending at a query or fragment (`..?x` resolves to the parent, RFC 3986 5.2.4): each could step outside a prefix.
_DOT_SEGMENT = re.compile(r"(^|[/:])[. ]*\.[. ]*(;[^/:?#]*)?([/:?#]|$)")
# Characters some systems read as a path separator; NFKC leaves them alone.
_SLASHES = str.maketrans({"\\": "/", "\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u2216": "/", "\u29f9": "/"})
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
MAX_DECODE_ROUNDS = 3


def _control(ch: str) -> bool:
    return ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029"


def is_well_formed(resource: str) -> bool:
    """No control characters and no `.`/`..` path segments, which could step outside a prefix."""
    return not any(_control(ch) for ch in resource) and not _DOT_SEGMENT.search(resource)


def canonical_resource(resource: str) -> str | None:
    """The form a resource is matched in, or None if it is refused (a traversal, a control character, or encoding
    nested deeper than any client needs)."""
    text = resource
    for _ in range(MAX_DECODE_ROUNDS):
        text = unicodedata.normalize("NFKC", text).translate(_SLASHES)
        if not _ENCODED.search(text):
            break
        try:
            text = unquote(text, errors="strict")
        except UnicodeDecodeError:
            return None
    else:
        return None
    return text if is_well_formed(text) else None


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)) + r"\Z")


def resource_allowed(constraint: str, resource: str) -> bool:
    """The Python reference of the match authorize does in SQL, over the caller's resource as sent."""
    canonical = canonical_resource(resource) if resource else ""
    if canonical is None:
        return False  # a traversal is refused whatever the grant (authorize: invalid_resource)
    if not constraint:
        return True
    if not canonical:
        return False
    return _compile(constraint).match(canonical) is not None
