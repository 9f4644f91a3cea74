"""The resource a call acts on, from the mapping's template and the call's arguments."""

from .config import PLACEHOLDER, ToolMap


class Unresolved(Exception):
    """The template names an argument the call did not give (or gave as something other than text or a number)."""


def resource_for(mapping: ToolMap, arguments: dict | None) -> str:
    """Each `{name}` becomes the argument's value as given. The portal decides on it: a value that smuggles in
    structure ("../", encoded or compatibility characters) has no canonical form and is denied (`invalid_resource`),
    and a `*` in it is literal text (only a grant's constraint has wildcards). "*" (no template) asks about the tool
    as a whole: the empty resource."""
    if mapping.resource == "*":
        return ""
    arguments = arguments or {}

    def value(match) -> str:
        name = match.group(1)
        given = arguments.get(name)
        if isinstance(given, bool) or not isinstance(given, str | int | float) or given == "":
            raise Unresolved(name)
        return str(given)

    return PLACEHOLDER.sub(value, mapping.resource)
