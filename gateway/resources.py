"""The resource a call acts on, from the mapping's template and the call's arguments."""

import re
import unicodedata

from .config import PLACEHOLDER, ToolMap

# What the portal would rewrite before deciding (percent-encoding, backslashes, compatibility forms, dot segments):
# the upstream would then act on a value other than the one decided on, so such values are refused here.
_NOT_CANONICAL = re.compile(r"[%\\]|(^|/)\.{1,2}(/|$)")


class Unresolved(Exception):
    """The template names an argument the call did not give (or gave as something other than text or a number)."""


class NotCanonical(Exception):
    """An argument the portal would decide on in another form than the upstream would act on."""


def resource_for(mapping: ToolMap, arguments: dict | None) -> str:
    """Each `{name}` becomes the argument's value as given (text or a whole number). A value the portal would decide
    on in another form (percent-encoded, compatibility characters, dot segments) is refused, so that the resource
    decided on is the one the upstream acts on; a `*` in it is literal text (only a grant's constraint has
    wildcards). "*" (no template) asks about the tool as a whole: the empty resource."""
    if mapping.resource == "*":
        return ""
    arguments = arguments or {}

    def value(match) -> str:
        name = match.group(1)
        given = arguments.get(name)
        if isinstance(given, bool) or not isinstance(given, str | int) or given == "":
            raise Unresolved(name)
        text = str(given)
        if (
            _NOT_CANONICAL.search(text)
            or unicodedata.normalize("NFKC", text) != text
            or any(unicodedata.category(ch).startswith("C") for ch in text)
        ):
            raise NotCanonical(name)
        return text

    return PLACEHOLDER.sub(value, mapping.resource)
