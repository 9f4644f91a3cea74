"""Validation messages that never repeat the submitted value.

Django's and DRF's stock messages for a value outside a field's choices quote it back ('"<input>" is not a valid
choice.', 'Select a valid choice. <value> is not one of the available choices.', 'Invalid pk "<pk>"', 'Object with
username=<value> does not exist.'), so a secret pasted into the wrong field came back in the 400 answer or on the form
page, and from there into logs and screenshots. The replacements are set once, at startup, on the classes that own
those messages: every field built from them later inherits them, whichever form, serializer, filter set or admin page
builds it, and no new form can forget to opt in.
"""

from django import forms
from rest_framework import fields, relations

NOT_A_CHOICE = "Select a valid choice. That choice is not one of the available choices."
NOT_CHOICES = "Select valid choices. One of them is not one of the available choices."

REPLACEMENTS = {
    forms.ChoiceField: {"invalid_choice": NOT_A_CHOICE},
    forms.MultipleChoiceField: {"invalid_choice": NOT_CHOICES},
    forms.ModelChoiceField: {"invalid_choice": NOT_A_CHOICE},
    forms.ModelMultipleChoiceField: {"invalid_choice": NOT_CHOICES, "invalid_pk_value": NOT_CHOICES},
    fields.ChoiceField: {"invalid_choice": "Not a valid choice."},
    fields.MultipleChoiceField: {"invalid_choice": "Not a valid choice."},
    fields.FilePathField: {"invalid_choice": "Not a valid path choice."},
    relations.PrimaryKeyRelatedField: {"does_not_exist": "Invalid pk - object does not exist."},
    relations.SlugRelatedField: {"does_not_exist": "No object with that {slug_name} exists."},
}


def install() -> None:
    """Replace the stock messages. Fields copy their class's messages when created: call before any form exists."""
    for cls, messages in REPLACEMENTS.items():
        cls.default_error_messages = {**cls.__dict__["default_error_messages"], **messages}
