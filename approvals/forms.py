"""Page forms for the approvals workflow. Choices are limited to what the user may pick."""

from django import forms

from inventory.models import AITool, Scope, ServiceIdentity

from . import policy
from .services import ScopeItem

RESOURCE_PREFIX = "resource_"


class AccessRequestForm(forms.Form):
    tool = forms.ModelChoiceField(queryset=AITool.objects.none(), empty_label="Choose one of your tools")
    identity = forms.ModelChoiceField(
        queryset=ServiceIdentity.objects.none(), empty_label="Choose the identity it acts through"
    )
    scopes = forms.ModelMultipleChoiceField(queryset=Scope.objects.all(), widget=forms.CheckboxSelectMultiple)
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the tool does with these scopes and why less would not do. At least a sentence.",
    )
    duration_days = forms.IntegerField(
        min_value=1, max_value=policy.LONGEST_GRANT_DAYS, initial=policy.DEFAULT_DURATION_DAYS,
        label="Duration (days)", help_text=f"Capped by policy: {policy.duration_caps_text()}.",
    )  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        tools = AITool.objects.editable_by(user).filter(status__in=["active", "pilot"]).order_by("name")
        self.fields["tool"].queryset = tools
        tool_id = self.data.get("tool") or self.initial.get("tool")
        self.fields["identity"].queryset = identities_for_tool(tools, tool_id)
        # An identity holds scopes at its own provider only: offer those, once the identity is chosen. The field
        # accepts any scope, so that the rule is the service's (approvals.services.request_file), said in its words on
        # this page as on the API.
        chosen = self.data.get("identity") or self.initial.get("identity")
        self.chosen_identity = _one(self.fields["identity"].queryset, chosen)
        provider = self.chosen_identity.provider if self.chosen_identity else None
        self.offered_scopes = Scope.objects.filter(provider=provider) if provider else Scope.objects.none()

    def clean(self):
        cleaned = super().clean()
        cleaned["items"] = [
            ScopeItem(scope, (self.data.get(f"{RESOURCE_PREFIX}{scope.pk}") or "").strip()[:255])
            for scope in cleaned.get("scopes") or []
        ]
        return cleaned


def _one(queryset, pk):
    """The row of `queryset` with this primary key as sent in a form or URL, or None for anything else."""
    if not pk or not (str(pk).isascii() and str(pk).isdigit()) or len(str(pk)) > 18:
        return None
    return queryset.filter(pk=pk).first()


def identities_for_tool(tools, tool_id):
    """Identities bound to one of the user's tools; nothing for a tool they cannot edit or a bad id."""
    if not tool_id or not (str(tool_id).isascii() and str(tool_id).isdigit()) or len(str(tool_id)) > 18:
        return ServiceIdentity.objects.none()
    return ServiceIdentity.objects.filter(bindings__tool__in=tools.filter(pk=tool_id)).order_by("name")


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, max_length=4000, widget=forms.TextInput(attrs={"placeholder": "Comment"}))


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=4000, widget=forms.TextInput(attrs={"placeholder": "Reason (required)"}))
