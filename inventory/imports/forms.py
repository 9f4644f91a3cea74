"""The Sources page's forms: upload (preview), apply (the previewed file only), and security's review decisions. They
check shape; the rules are the services' (`sources.sync`, `sources.review`)."""

import hashlib
import re

from django import forms
from django.conf import settings

from inventory.choices import DataClassification, Environment

from .sources.kinds import KINDS
from .sources.review import MAX_ASSIGN, MAX_REASON

SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind, kind) for kind in KINDS], label="Source kind")
    account = forms.CharField(required=False, max_length=200, help_text="Account, org or tenant the file is from.")
    full = forms.BooleanField(required=False, label="Full export: what it no longer lists is gone at the source")
    file = forms.FileField(help_text="The provider's own export, as its CLI or API gives it.")

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is larger than the {limit} bytes an import may be.")
        raw = upload.read(limit + 1)
        if len(raw) > limit:
            raise forms.ValidationError(f"The file is larger than the {limit} bytes an import may be.")
        if not raw.strip():
            raise forms.ValidationError("The file is empty.")
        return raw

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.cleaned_data["file"]).hexdigest()


class ApplyForm(UploadForm):
    """The same fields, plus the digest of the file that was previewed: Apply imports only that file."""

    digest = forms.CharField(widget=forms.HiddenInput)

    def clean_digest(self) -> str:
        value = self.cleaned_data["digest"]
        if not SHA256.match(value):
            raise forms.ValidationError("Preview the file first.")
        return value

    def clean(self):
        cleaned = super().clean()
        raw, previewed = cleaned.get("file"), cleaned.get("digest")
        if raw is not None and previewed and hashlib.sha256(raw).hexdigest() != previewed:
            # Never apply a file nobody saw the preview of.
            raise forms.ValidationError("This is not the file that was previewed. Preview it before applying it.")
        return cleaned


class AcceptForm(forms.Form):
    owner = forms.CharField(required=False, max_length=150, help_text="Username of the tool's owner; you if blank.")
    slug = forms.SlugField(required=False, max_length=120, help_text="Blank: made from the name.")
    environment = forms.ChoiceField(choices=Environment.choices, initial=Environment.PROD)
    data_classification = forms.ChoiceField(choices=DataClassification.choices, initial=DataClassification.INTERNAL)


class DismissForm(forms.Form):
    reason = forms.CharField(max_length=MAX_REASON, widget=forms.TextInput(attrs={"placeholder": "Why not"}))


class AssignForm(forms.Form):
    identities = forms.TypedMultipleChoiceField(coerce=int, choices=(), error_messages={
        "required": "Pick at least one identity.", "invalid_choice": "Pick identities from the list."})  # fmt: skip
    owner = forms.CharField(max_length=150, help_text="Username of the new owner.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is a valid choice here: the service checks each is in the queue, in the transaction.
        self.fields["identities"].valid_value = lambda value: str(value).isdigit()

    def clean_identities(self) -> list[int]:
        value = self.cleaned_data["identities"]
        if len(value) > MAX_ASSIGN:
            raise forms.ValidationError(f"At most {MAX_ASSIGN} identities at a time.")
        return value
