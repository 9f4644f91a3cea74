"""Requests and grants over the API. Workflow actions validate input and call one service each."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django_filters.rest_framework import CharFilter, ChoiceFilter, FilterSet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals import selectors, services
from approvals.choices import DecisionKind, RequestStatus
from approvals.models import AccessRequest
from inventory.filters import GrantFilter
from nhi_portal.filters import StrictFilterBackend
from nhi_portal.schema import error_response

from . import serializers

CONFLICT = error_response(409, "FieldErrors")
DECIDED = {200: serializers.AccessRequestSerializer, 409: CONFLICT}


class RequestFilter(FilterSet):
    status = ChoiceFilter(choices=RequestStatus.choices)
    tool = CharFilter(field_name="tool__slug")
    identity = CharFilter(field_name="identity__name")
    requester = CharFilter(field_name="requester__username")

    class Meta:
        model = AccessRequest
        fields = ["status", "tool", "identity", "requester"]


@extend_schema_view(
    list=extend_schema(
        summary="List scope requests",
        description="Requests the caller may see: owners their own tools', security all, newest first.",
    ),
    retrieve=extend_schema(summary="Get a scope request", description="One request, with its scopes and decisions."),
    create=extend_schema(
        summary="Request scopes",
        description="File a request for scopes for an identity bound to a tool the caller owns, with a justification "
        "and a duration the policy caps by risk. Only scopes of the identity's provider may be asked for: another "
        "provider's scope is a 400 with the error on `scopes`, and nothing is filed. The answer says how many "
        "approvals it needs (`required_approvals`) "
        "and under which policy rules; it starts `pending` (or `approved`, under an auto-approval rule).",
    ),
)
class AccessRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = serializers.AccessRequestSerializer
    lookup_value_regex = r"[0-9]+"
    filter_backends = [StrictFilterBackend]
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

    @extend_schema(summary="Approve a scope request", request=serializers.DecisionInput, responses=DECIDED)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Security approves, never on their own request and once each; the approval that meets the policy issues the
        grants. 409 when the request is no longer pending or past its pending window."""
        return self._decide(request, pk, DecisionKind.APPROVE)

    @extend_schema(summary="Deny a scope request", request=serializers.DecisionInput, responses=DECIDED)
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        """Security denies; one deny ends the request. 409 when it is no longer pending."""
        return self._decide(request, pk, DecisionKind.DENY)

    def _decide(self, request, pk, kind: str):
        return self._transition(
            request,
            pk,
            lambda comment: services.request_decide(actor=request.user, request_id=int(pk), kind=kind, comment=comment),
        )

    @extend_schema(summary="Cancel a scope request", request=serializers.DecisionInput, responses=DECIDED)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """The requester withdraws a pending request. 409 when it is no longer pending."""
        return self._transition(
            request,
            pk,
            lambda comment: services.request_cancel(actor=request.user, request_id=int(pk), comment=comment),
        )

    @extend_schema(
        summary="Renew an approved request",
        request=None,
        responses={201: serializers.AccessRequestSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        """File the same request again, for its requester, before its grants expire: the new request goes through the
        policy as it is now. 409 unless the request was approved, or when a grant it issued was revoked (the reason
        is in the message: a new request must answer it)."""
        if not self.get_queryset().filter(pk=pk).exists():
            raise Http404
        renewal = services.request_renew(requester=request.user, request_id=int(pk))
        return Response(
            self.get_serializer(self.get_queryset().get(pk=renewal.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    list=extend_schema(
        summary="List grants",
        description="Grants held by the identities the caller may see; issued by approved requests, revoked here.",
    ),
    retrieve=extend_schema(summary="Get a grant", description="One grant, with the request that issued it."),
)
class GrantViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.GrantSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = GrantFilter
    filter_backends = [StrictFilterBackend]

    def get_queryset(self):
        return selectors.grant_list(user=self.request.user)

    @extend_schema(
        summary="Revoke a grant",
        request=serializers.RevokeInput,
        responses={200: serializers.GrantSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Security or the tool's owner revokes a grant, with a reason; revocation is final. 409 when the grant is no
        longer active."""
        grant = self.get_object()
        body = serializers.RevokeInput(data=request.data)
        body.is_valid(raise_exception=True)
        if not services.grant_may_revoke(request.user, grant):
            raise PermissionDenied("Only security or the owner can revoke this grant.")
        services.grant_revoke(actor=request.user, grant_id=grant.pk, reason=body.validated_data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=grant.pk)).data)
