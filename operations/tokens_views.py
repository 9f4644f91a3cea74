"""The API tokens page (/tokens/): list, issue (the token shown once, on the answer to the form) and revoke.

Same rules as the API, through the same functions (tokens.py). A gateway account's token is issued here by security,
with its tool limits and lifetime."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from nhi_portal import roles
from nhi_portal.decorators import portal_page

from . import tokens


class IssueForm(forms.Form):
    user = forms.ChoiceField(label="For")
    days = forms.IntegerField(label="Expires after (days)", min_value=1, max_value=tokens.MAX_DAYS, initial=30)
    tools = forms.CharField(
        label="Limited to tools (slugs, comma-separated; gateway tokens only)", required=False, max_length=2000
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        # Yourself; for security also the gateway accounts (machine accounts: a handful, not every user).
        choices = [(actor.get_username(), f"{actor.get_username()} (you)")]
        if roles.is_security(actor):
            gateways = get_user_model().objects.filter(groups__name=roles.GATEWAY, is_active=True).order_by("username")
            choices += [(name, f"{name} (gateway)") for name in gateways.values_list("username", flat=True)[:500]]
        self.fields["user"].choices = choices

    def clean_tools(self) -> list[str]:
        return [slug.strip() for slug in self.cleaned_data["tools"].split(",") if slug.strip()]


def _page(request, form, *, issued=None, status=200):
    context = {"tokens": tokens.tokens_visible_to(request.user), "form": form, "issued": issued}
    return render(request, "operations/tokens.html", context, status=status)


@never_cache
@portal_page
def token_page(request):
    if request.method != "POST":
        return _page(request, IssueForm(actor=request.user))
    form = IssueForm(request.POST, actor=request.user)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        token, text = tokens.token_issue(
            actor=request.user,
            username=form.cleaned_data["user"],
            days=form.cleaned_data["days"],
            tools=form.cleaned_data["tools"],
            via="page",
        )
    except tokens.TokenRefused as refused:
        for field, message in refused.errors.items():
            form.add_error(field if field in form.fields else None, message)
        return _page(request, form, status=400)
    issued = {"id": tokens.public_id(token), "user": token.user.get_username(), "token": text}
    return _page(request, IssueForm(actor=request.user), issued=issued)


@require_POST
@portal_page
def token_revoke(request, token_id: str):
    token = tokens.token_get(user=request.user, token_id=token_id)
    if token is None:
        raise Http404
    tokens.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token {token_id} of {token.user.get_username()} revoked.")
    return redirect("tokens")
