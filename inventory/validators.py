"""Field validators shared by the models, so forms, the API, the importer and the admin refuse the same input."""

from django.core.exceptions import ValidationError

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: a name that holds one can split a
# mail header, a CSV row or a log line, and reads differently from what a reviewer sees.
_CONTROL = {*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029}


def has_control_characters(value: str) -> bool:
    return any(ord(ch) in _CONTROL for ch in value)


def refuse_control_characters(value: str) -> None:
    if isinstance(value, str) and has_control_characters(value):
        # Never echo the value: a name field is where pasted secrets land.
        raise ValidationError("Must not contain control characters or line breaks.", code="control_characters")
