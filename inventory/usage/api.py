"""Usage ingest over the API: gateways and connectors report what ran (POST /api/v1/events/)."""

from django.apps import apps
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.usage.ingest import MAX_BATCH, IngestError, IngestRefused, events_ingest
from nhi_portal.permissions import IsGatewayOrSecurity
from nhi_portal.schema import error_response


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


def _text(limit: int, help_text: str, *, required: bool = False) -> serializers.CharField:
    # The limits `ingest._text` applies; null reads as absent.
    return serializers.CharField(
        max_length=limit,
        required=required,
        allow_null=not required,
        allow_blank=not required,
        trim_whitespace=False,
        help_text=help_text,
    )


class ObservedEventSerializer(serializers.Serializer):
    """One use of an identity seen outside the portal. Validated by `inventory.usage.ingest`; documented here."""

    event_id = _text(128, "The reporter's id for the event; a repeat from the same account is skipped.", required=True)
    occurred_at = serializers.DateTimeField(help_text="With its time zone; at most five minutes in the future.")
    tool = _text(200, "Tool slug. Required from a gateway token limited to some tools.")
    identity = _text(200, "Identity name.", required=True)
    on_behalf_of = _text(150, "Username of the human it acted for.")
    scope = _text(200, "Scope name.")
    resource = _text(500, "The resource acted on.")
    credential = _text(80, "Fingerprint of the credential used.")
    decision = serializers.IntegerField(
        required=False, allow_null=True, min_value=0,
        help_text="The event id of the allow this use followed (from /authorize/, given to this same account).",
    )  # fmt: skip
    outcome = serializers.ChoiceField(choices=["ok", "error"], required=False, allow_null=True)
    duration_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**31 - 1)
    agent = _text(200, "The agent that acted for the human, when known.")
    action = _text(200, "What ran, e.g. the MCP tool name.")


class EventBatchSerializer(serializers.Serializer):
    events = ObservedEventSerializer(
        many=True, min_length=1, max_length=MAX_BATCH, help_text="Event ids must not repeat within a batch."
    )


class EventBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Events already reported before (same event_id), skipped.")


class EventIngestView(APIView):
    """Usage observed elsewhere, in batches of up to 1,000, all or nothing; idempotent by event_id per reporting
    account. The body may also be the bare list of events. A job rolls allowed use into last-used times."""

    permission_classes = [IsGatewayOrSecurity]

    @extend_schema(
        summary="Report observed usage",
        request=EventBatchSerializer,
        responses={
            201: OpenApiResponse(EventBatchResultSerializer, description="At least one event was new and stored."),
            200: OpenApiResponse(EventBatchResultSerializer, description="Every event had been reported before."),
            400: error_response(400, "RowErrors", "Error", description="A problem in some row; nothing stored."),
            403: error_response(
                403,
                "Error",
                "RowErrors",
                description="A role that may not report usage, or rows about tools this gateway token does not front "
                "(`errors`); nothing stored.",
            ),
        },
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
