"""POST /api/v1/authorize/: the decision gateways ask for before a tool acts."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.authorization import REASONS, AuthorizationQuery, authorize
from nhi_portal.parsers import StrictJSONParser
from nhi_portal.permissions import IsGatewayOrSecurity
from nhi_portal.throttles import AuthorizeThrottle


class AuthorizeRequestSchema(serializers.Serializer):
    tool = serializers.CharField(help_text="Tool slug (or id as an integer).")
    identity = serializers.CharField(help_text="Identity name (or id as an integer).")
    on_behalf_of = serializers.CharField(help_text="Username of the human the action is for (or id).")
    scope = serializers.CharField(help_text="Scope name (or id).")
    resource = serializers.CharField(required=False, help_text="The resource acted on, e.g. project:payments/api.")
    request_id = serializers.CharField(required=False, help_text="Gateway's id for this call; repeats are idempotent.")
    credential = serializers.CharField(required=False, help_text="Id or fingerprint of the credential it will use.")


class AuthorizeResponseSchema(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["allow", "deny"])
    reason = serializers.ChoiceField(choices=REASONS)
    grant = serializers.IntegerField(allow_null=True)
    event_id = serializers.IntegerField()
    replay_of = serializers.IntegerField(
        required=False,
        help_text="For a repeated request id: the event of the first answer. This one was decided afresh.",
    )
    errors = serializers.DictField(child=serializers.CharField(), required=False)


class AuthorizeView(APIView):
    """Deny by default: anything missing, unknown or ambiguous is a deny with a reason, never an error page."""

    permission_classes = [IsGatewayOrSecurity]
    # Per gateway account (AUTHORIZE_RATE), so one runaway gateway is refused while the others are still answered.
    throttle_classes = [AuthorizeThrottle]
    # A machine endpoint: JSON in, JSON out, nothing to negotiate on every call.
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        request=AuthorizeRequestSchema,
        responses={200: AuthorizeResponseSchema},
        examples=[
            OpenApiExample(
                "Ask before acting",
                value={
                    "tool": "release-agent",
                    "identity": "svc-release-agent",
                    "on_behalf_of": "owner",
                    "scope": "deploy:release:write",
                    "resource": "project:payments/api",
                    "request_id": "gw-7f3a-0001",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        query = AuthorizationQuery(
            tool=body.get("tool"),
            identity=body.get("identity"),
            on_behalf_of=body.get("on_behalf_of"),
            scope=body.get("scope"),
            resource=body.get("resource", "") if body.get("resource") is not None else "",
            request_id=body.get("request_id", "") if body.get("request_id") is not None else "",
            credential=body.get("credential", "") if body.get("credential") is not None else "",
        )
        token = request.auth if hasattr(request.auth, "digest") else None
        decision = authorize(query=query, source=request.user.get_username(), token=token)
        payload = {
            "decision": decision.decision,
            "reason": decision.reason,
            "grant": decision.grant_id,
            "event_id": decision.event_id,
        }
        if decision.replay_of is not None:
            payload["replay_of"] = decision.replay_of
        if decision.errors:
            payload["errors"] = decision.errors
        return Response(payload, status=status.HTTP_200_OK)
