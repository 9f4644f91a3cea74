"""Thin viewsets: querysets come from selectors (already scoped to the caller), writes go through services."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.filters import SearchFilter

from inventory import filters, selectors, services
from inventory.models import Scope
from nhi_portal.filters import StrictFilterBackend
from nhi_portal.schema import error_response

from . import serializers

HELD = (
    " A change that lowers risk (out of production, data classification down, storage moved to a vault, no longer "
    "third-party) is not applied: it is held for a second security user to confirm and reported as a "
    "`fact_change_unreviewed` finding; the answer shows the value in force."
)


class _ServiceWriteMixin:
    """Route create/update through the inventory services so the API obeys the same rules as the pages."""

    create_service = None
    update_service = None
    update_kwarg = ""

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = type(self).create_service(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        kwargs = {self.update_kwarg: serializer.instance}
        serializer.instance = type(self).update_service(actor=self.request.user, data=data, **kwargs)


@extend_schema_view(
    list=extend_schema(description="The AI tools the caller may see, filtered by the query parameters."),
    create=extend_schema(
        description="Register an AI tool. The caller owns it unless security names another owner. Secrets found in "
        "its prompt templates or connector configuration are stored redacted and reported as findings."
    ),
    retrieve=extend_schema(description="One AI tool."),
    partial_update=extend_schema(description="Change an AI tool." + HELD),
    destroy=extend_schema(
        description="Delete an AI tool; its active grants are revoked with it. A tool that recorded activity still "
        "refers to cannot be deleted (409): retire it instead.",
        responses={204: None, 409: error_response(409, "FieldErrors")},
    ),
)
class ToolViewSet(_ServiceWriteMixin, viewsets.ModelViewSet):
    serializer_class = serializers.ToolSerializer
    filterset_class = filters.ToolFilter
    filter_backends = [StrictFilterBackend]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    create_service = staticmethod(services.tool_create)
    update_service = staticmethod(services.tool_update)
    update_kwarg = "tool"

    def get_queryset(self):
        return selectors.tool_list(user=self.request.user).prefetch_related(
            "identities", "allowed_users", "allowed_teams"
        )

    def perform_destroy(self, instance):
        services.tool_delete(actor=self.request.user, tool=instance)


@extend_schema_view(
    list=extend_schema(description="The service identities the caller may see, filtered by the query parameters."),
    create=extend_schema(description="Register a service identity (service account, API key holder, OAuth client)."),
    retrieve=extend_schema(description="One service identity."),
    partial_update=extend_schema(description="Change a service identity." + HELD),
)
class IdentityViewSet(_ServiceWriteMixin, viewsets.ModelViewSet):
    serializer_class = serializers.IdentitySerializer
    filterset_class = filters.IdentityFilter
    filter_backends = [StrictFilterBackend]
    http_method_names = ["get", "post", "patch", "head", "options"]
    create_service = staticmethod(services.identity_create)
    update_service = staticmethod(services.identity_update)
    update_kwarg = "identity"

    def get_queryset(self):
        return selectors.identity_list(user=self.request.user, credential_counts=False)


@extend_schema_view(
    list=extend_schema(description="Credentials of the identities the caller may see. Secrets are never returned."),
    create=extend_schema(
        description="Record a credential: send the `secret` (fingerprinted on arrival, then dropped) or its "
        "`fingerprint`. The same secret twice on one identity is refused."
    ),
    retrieve=extend_schema(description="One credential: its fingerprint and last four characters, never the secret."),
    partial_update=extend_schema(
        description="Change a credential; a new `secret` is a rotation. A revoked credential stays revoked." + HELD
    ),
)
class CredentialViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = serializers.CredentialSerializer
    filterset_class = filters.CredentialFilter
    filter_backends = [StrictFilterBackend]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.credential_list(user=self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        secret = data.pop("secret", None)
        identity = data.pop("identity")
        serializer.instance = services.credential_create(
            actor=self.request.user, identity=identity, data=data, secret=secret
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        secret = data.pop("secret", None)
        serializer.instance = services.credential_update(
            actor=self.request.user, credential=serializer.instance, data=data, secret=secret
        )


@extend_schema_view(
    list=extend_schema(description="The scopes identities can be granted, with their risk and sensitivity."),
    retrieve=extend_schema(description="One scope."),
)
class ScopeViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.ScopeSerializer
    queryset = Scope.objects.all()
    filterset_fields = ["provider", "risk", "sensitive"]
    filter_backends = [StrictFilterBackend, SearchFilter]
    search_fields = ["name", "provider", "description"]
