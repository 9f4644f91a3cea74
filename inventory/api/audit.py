"""The audit trail and access events over the API (security only), the chain check, and usage ingest."""

import django_filters
from django.apps import apps
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import AuditEntry
from inventory.sealing import verify
from inventory.usage import IngestError, IngestRefused, events_ingest
from nhi_portal.permissions import IsGatewayOrSecurity, IsSecurity


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "created_at", "actor_label", "action", "object_type", "object_id", "object_repr"]
        fields += ["before", "after", "comment"]


class AuditEntryFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["action", "object_type", "object_id", "actor_label"]


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsSecurity]
    serializer_class = AuditEntrySerializer
    queryset = AuditEntry.objects.order_by("-id")
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEntryFilter


class VerifyAuditView(APIView):
    permission_classes = [IsSecurity]

    @extend_schema(
        responses=inline_serializer(
            "AuditVerify",
            {
                "ok": serializers.BooleanField(),
                "checked": serializers.IntegerField(),
                "first_bad": serializers.IntegerField(allow_null=True),
                "stream": serializers.CharField(allow_null=True),
                "batch": serializers.IntegerField(allow_null=True),
                "problem": serializers.CharField(),
                "problems": serializers.ListField(
                    child=inline_serializer(
                        "AuditVerifyProblem",
                        {
                            "stream": serializers.CharField(),
                            "batch": serializers.IntegerField(allow_null=True),
                            "first_bad": serializers.IntegerField(allow_null=True),
                            "problem": serializers.CharField(),
                        },
                    )
                ),
            },
        )
    )
    def get(self, request):
        return Response(verify().as_dict())


def _token_tool_limit(token) -> frozenset[int] | None:
    """The tools a limited gateway token fronts (approvals' GatewayToolLimit), None if the caller is not limited.

    Read by app label because inventory never imports approvals; the rule is the one /authorize/ applies, keyed on
    the token whatever the user's role, so a session (no token) and an unlimited token are not limited.
    """
    if not hasattr(token, "digest"):
        return None
    try:
        limits = apps.get_model("approvals", "GatewayToolLimit")
    except LookupError:
        return None
    # One row per fronted tool; a limit naming no tools comes back as one NULL and refuses every tool.
    rows = list(limits.objects.filter(token=token).values_list("tools", flat=True))
    return frozenset(tool for tool in rows if tool is not None) if rows else None


class EventIngestView(APIView):
    """Usage observed elsewhere, in batches of up to 1,000; idempotent by event_id per reporting account."""

    permission_classes = [IsGatewayOrSecurity]

    @extend_schema(
        request=inline_serializer(
            "EventBatch",
            {
                "events": serializers.ListField(
                    child=inline_serializer(
                        "ObservedEvent",
                        {
                            "event_id": serializers.CharField(),
                            "occurred_at": serializers.DateTimeField(),
                            "tool": serializers.CharField(required=False),
                            "identity": serializers.CharField(),
                            "on_behalf_of": serializers.CharField(required=False),
                            "scope": serializers.CharField(required=False),
                            "resource": serializers.CharField(required=False),
                            "credential": serializers.CharField(required=False),
                        },
                    )
                )
            },
        ),
        responses=inline_serializer(
            "EventBatchResult",
            {
                "received": serializers.IntegerField(),
                "created": serializers.IntegerField(),
                "duplicates": serializers.IntegerField(),
            },
        ),
    )
    def post(self, request):
        body = request.data
        events = body.get("events") if isinstance(body, dict) else body
        try:
            result = events_ingest(
                source=request.user.get_username(), events=events, tools_allowed=_token_tool_limit(request.auth)
            )
        except IngestRefused as error:
            return Response({"errors": error.errors}, status=status.HTTP_403_FORBIDDEN)
        except IngestError as error:
            return Response({"errors": error.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {"received": result.received, "created": result.created, "duplicates": result.duplicates},
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
