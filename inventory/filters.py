"""Filters shared by the list pages, the CSV exports and the API, so all three answer alike."""

import django_filters
from django.db.models import Q

from . import choices
from .models import AITool, Credential, ScopeGrant, ServiceIdentity


class _SearchMixin(django_filters.FilterSet):
    search_fields: tuple[str, ...] = ()
    search = django_filters.CharFilter(method="filter_search", label="Search")

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        query = Q()
        for field in self.search_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)


class ToolFilter(_SearchMixin):
    search_fields = ("name", "slug", "vendor", "description")
    kind = django_filters.ChoiceFilter(choices=choices.ToolKind.choices)
    environment = django_filters.ChoiceFilter(choices=choices.Environment.choices)
    status = django_filters.ChoiceFilter(choices=choices.ToolStatus.choices)
    data_classification = django_filters.ChoiceFilter(choices=choices.DataClassification.choices)
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner (username)")
    team = django_filters.CharFilter(field_name="team__slug", label="Team (slug)")
    enforces_authorization = django_filters.BooleanFilter()
    ordering = django_filters.OrderingFilter(
        fields=(
            ("name", "name"),
            ("kind", "kind"),
            ("environment", "environment"),
            ("status", "status"),
            ("owner__username", "owner"),
            ("team__name", "team"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
        )
    )

    class Meta:
        model = AITool
        fields = ["kind", "environment", "status", "data_classification", "owner", "team", "enforces_authorization"]


class IdentityFilter(_SearchMixin):
    search_fields = ("name", "provider", "external_id")
    kind = django_filters.ChoiceFilter(choices=choices.IdentityKind.choices)
    environment = django_filters.ChoiceFilter(choices=choices.Environment.choices)
    status = django_filters.ChoiceFilter(choices=choices.IdentityStatus.choices)
    provider = django_filters.CharFilter()
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner (username)")
    tool = django_filters.CharFilter(field_name="tools__slug", label="Tool (slug)", distinct=True)
    third_party = django_filters.BooleanFilter()
    ordering = django_filters.OrderingFilter(
        fields=(
            ("name", "name"),
            ("kind", "kind"),
            ("provider", "provider"),
            ("environment", "environment"),
            ("status", "status"),
            ("owner__username", "owner"),
            ("last_used_at", "last_used_at"),
            ("created_at", "created_at"),
        )
    )

    class Meta:
        model = ServiceIdentity
        fields = ["kind", "environment", "status", "provider", "owner", "tool", "third_party"]


class CredentialFilter(django_filters.FilterSet):
    identity = django_filters.CharFilter(field_name="identity__name", label="Identity (name)")
    kind = django_filters.ChoiceFilter(choices=choices.CredentialKind.choices)
    storage = django_filters.ChoiceFilter(choices=choices.CredentialStorage.choices)
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("last_used_at", "last_used_at"), ("expires_at", "expires_at"))
    )

    class Meta:
        model = Credential
        fields = ["identity", "kind", "storage", "revoked"]


class GrantFilter(django_filters.FilterSet):
    identity = django_filters.CharFilter(field_name="identity__name", label="Identity (name)")
    scope = django_filters.CharFilter(field_name="scope__name", label="Scope (name)")
    tool = django_filters.CharFilter(field_name="tool__slug", label="Tool (slug)")
    status = django_filters.ChoiceFilter(choices=choices.GrantStatus.choices)
    ordering = django_filters.OrderingFilter(
        fields=(("granted_at", "granted_at"), ("expires_at", "expires_at"), ("last_used_at", "last_used_at"))
    )

    class Meta:
        model = ScopeGrant
        fields = ["identity", "scope", "tool", "status"]
