"""Thin viewsets: querysets come from selectors (already scoped to the caller), writes go through services."""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, viewsets
from rest_framework.filters import SearchFilter

from inventory import filters, selectors, services
from inventory.models import Scope

from . import serializers


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


class ToolViewSet(_ServiceWriteMixin, viewsets.ModelViewSet):
    serializer_class = serializers.ToolSerializer
    filterset_class = filters.ToolFilter
    filter_backends = [DjangoFilterBackend]
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


class IdentityViewSet(_ServiceWriteMixin, viewsets.ModelViewSet):
    serializer_class = serializers.IdentitySerializer
    filterset_class = filters.IdentityFilter
    filter_backends = [DjangoFilterBackend]
    http_method_names = ["get", "post", "patch", "head", "options"]
    create_service = staticmethod(services.identity_create)
    update_service = staticmethod(services.identity_update)
    update_kwarg = "identity"

    def get_queryset(self):
        return selectors.identity_list(user=self.request.user, credential_counts=False)


class CredentialViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = serializers.CredentialSerializer
    filterset_class = filters.CredentialFilter
    filter_backends = [DjangoFilterBackend]
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


class ScopeViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.ScopeSerializer
    queryset = Scope.objects.all()
    filterset_fields = ["provider", "risk", "sensitive"]
    filter_backends = [DjangoFilterBackend, SearchFilter]
    search_fields = ["name", "provider", "description"]
