"""Page forms. Choices are limited to what the signed-in user may pick; services enforce the rules again."""

from django import forms
from django.contrib.auth import get_user_model

from inventory.autocomplete import IdentitiesPicker, UserPicker, UsersPicker
from inventory.fingerprints import validate_secret
from nhi_portal import roles

from .models import AITool, Credential, ServiceIdentity

User = get_user_model()

_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class _OwnerFieldMixin:
    """Only security may hand an object to someone else; for everyone else the field is hidden."""

    def _limit_owner(self, user):
        if roles.is_security(user):
            self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by("username")
            self.fields["owner"].required = False
            self.fields["owner"].help_text = "Leave empty to own it yourself."
        else:
            del self.fields["owner"]


class ToolForm(_OwnerFieldMixin, forms.ModelForm):
    class Meta:
        model = AITool
        fields = [
            "name",
            "slug",
            "kind",
            "vendor",
            "owner",
            "team",
            "environment",
            "data_classification",
            "status",
            "enforces_authorization",
            "description",
            "prompt_templates",
            "connector_config",
            "identities",
            "allowed_users",
            "allowed_teams",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 4}),
            "prompt_templates": forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
            "connector_config": forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
            # Found by typing (inventory/autocomplete.py): listing every identity and user made the page 3 MB.
            "identities": IdentitiesPicker(),
            "allowed_users": UsersPicker(),
            "allowed_teams": forms.SelectMultiple(attrs={"size": 4}),
        }
        labels = {"allowed_users": "May act for these people", "allowed_teams": "May act for members of these teams"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self._limit_owner(user)
        selectable = ServiceIdentity.objects.editable_by(user)
        if self.instance.pk:
            # Identities someone else bound stay selectable so that saving does not silently unbind them.
            selectable = selectable | ServiceIdentity.objects.filter(bindings__tool=self.instance)
        self.fields["identities"].queryset = selectable.distinct().order_by("name")
        self.fields["identities"].required = False
        self.fields["allowed_users"].queryset = User.objects.filter(is_active=True).order_by("username")
        if "owner" in self.fields:
            # Found by typing, like the people and identities: there may be tens of thousands (issue 17).
            owner = self.fields["owner"]
            owner.widget = UserPicker()
            owner.widget.choices = owner.choices


class IdentityForm(_OwnerFieldMixin, forms.ModelForm):
    class Meta:
        model = ServiceIdentity
        fields = [
            "name",
            "kind",
            "provider",
            "external_id",
            "owner",
            "environment",
            "third_party",
            "status",
            "interactive_use_seen",
            "last_reviewed_at",
        ]
        widgets = {"last_reviewed_at": _DATETIME}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self._limit_owner(user)


class CredentialForm(forms.ModelForm):
    secret = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Fingerprinted on arrival and dropped: the portal never stores or shows it.",
    )

    class Meta:
        model = Credential
        fields = ["kind", "storage", "expires_at"]
        widgets = {"expires_at": _DATETIME}

    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        problem = validate_secret(secret)
        if problem:
            raise forms.ValidationError(problem)
        return secret
