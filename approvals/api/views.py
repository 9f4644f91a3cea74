"""Requests and grants over the API. Workflow actions validate input and call one service each."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django_filters.rest_framework import CharFilter, ChoiceFilter, DjangoFilterBackend, FilterSet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals import selectors, services
from approvals.choices import DecisionKind, RequestStatus
from approvals.models import AccessRequest
from inventory.filters import GrantFilter

from . import serializers


class RequestFilter(FilterSet):
    status = ChoiceFilter(choices=RequestStatus.choices)
    tool = CharFilter(field_name="tool__slug")
    identity = CharFilter(field_name="identity__name")
    requester = CharFilter(field_name="requester__username")

    class Meta:
        model = AccessRequest
        fields = ["status", "tool", "identity", "requester"]


class AccessRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = serializers.AccessRequestSerializer
    lookup_value_regex = r"[0-9]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = RequestFilter

    def get_queryset(self):
        return selectors.request_list(user=self.request.user).prefetch_related("decisions__approver")

    def perform_create(self, serializer):
        data = serializer.validated_data
        items = [services.ScopeItem(i["scope"], i.get("resource_constraint", "")) for i in data["scopes"]]
        request = services.request_file(
            requester=self.request.user,
            tool=data["tool"],
            identity=data["identity"],
            items=items,
            justification=data["justification"],
            duration_days=data["duration_days"],
        )
        serializer.instance = self.get_queryset().get(pk=request.pk)

    def _transition(self, request, pk, run):
        # 404 for a request the caller may not see; 403/409 from the service for the rest.
        if not self.get_queryset().filter(pk=pk).exists():
            raise Http404
        body = serializers.DecisionInput(data=request.data)
        body.is_valid(raise_exception=True)
        run(body.validated_data["comment"])
        fresh = self.get_queryset().get(pk=pk)
        return Response(self.get_serializer(fresh).data)

    @extend_schema(request=serializers.DecisionInput, responses=serializers.AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, pk, DecisionKind.APPROVE)

    @extend_schema(request=serializers.DecisionInput, responses=serializers.AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        return self._decide(request, pk, DecisionKind.DENY)

    def _decide(self, request, pk, kind: str):
        return self._transition(
            request,
            pk,
            lambda comment: services.request_decide(actor=request.user, request_id=int(pk), kind=kind, comment=comment),
        )

    @extend_schema(request=serializers.DecisionInput, responses=serializers.AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._transition(
            request,
            pk,
            lambda comment: services.request_cancel(actor=request.user, request_id=int(pk), comment=comment),
        )

    @extend_schema(request=None, responses={201: serializers.AccessRequestSerializer})
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        if not self.get_queryset().filter(pk=pk).exists():
            raise Http404
        renewal = services.request_renew(requester=request.user, request_id=int(pk))
        return Response(
            self.get_serializer(self.get_queryset().get(pk=renewal.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema(description="Grants held by identities; issued by approved requests, revoked here.")
class GrantViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.GrantSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = GrantFilter
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        return selectors.grant_list(user=self.request.user)

    @extend_schema(request=serializers.RevokeInput, responses=serializers.GrantSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        grant = self.get_object()
        body = serializers.RevokeInput(data=request.data)
        body.is_valid(raise_exception=True)
        if not services.grant_may_revoke(request.user, grant):
            raise PermissionDenied("Only security or the owner can revoke this grant.")
        services.grant_revoke(actor=request.user, grant_id=grant.pk, reason=body.validated_data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=grant.pk)).data)
