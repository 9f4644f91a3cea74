"""Usage ingest over the API: gateways and connectors report what ran (POST /api/v1/events/)."""

from django.apps import apps
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.usage.ingest import IngestError, IngestRefused, events_ingest
from nhi_portal.permissions import IsGatewayOrSecurity


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
