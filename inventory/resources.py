"""Resource constraints on grants: patterns where `*` matches any run of characters.

`project:payments/*` allows `project:payments/api` and `project:payments/api/v2`, not `project:billing/x`.
A constraint without `*` allows exactly that resource. An empty constraint allows any resource.
"""

import re
from functools import lru_cache

_DOT_SEGMENT = re.compile(r"(^|[/:])\.{1,2}([/:]|$)")


def is_well_formed(resource: str) -> bool:
    """No control characters and no `.`/`..` path segments, which could step outside a prefix."""
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in resource) and not _DOT_SEGMENT.search(resource)


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)) + r"\Z")


def resource_allowed(constraint: str, resource: str) -> bool:
    if not constraint:
        return True
    if not resource or not is_well_formed(resource):
        return False
    return _compile(constraint).match(resource) is not None
