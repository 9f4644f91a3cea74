"""POST /api/v1/authorize/: the decision gateways ask for before a tool acts."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.authorization import QUESTION, REASONS, AuthorizationQuery, QuestionField, authorize
from nhi_portal.parsers import StrictJSONParser
from nhi_portal.permissions import IsGatewayOrSecurity
from nhi_portal.throttles import AuthorizeThrottle


class QuestionReferenceField(serializers.Field):
    """An id (a positive integer) or a natural key (a string), as `QuestionField(reference=True)` declares it."""

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)


class QuestionReferenceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = QuestionReferenceField

    def map_serializer_field(self, auto_schema, direction):
        by_id = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
        return {"oneOf": [by_id, {"type": "string", "minLength": 1, "maxLength": self.target.max_length}]}


def _schema_field(field: QuestionField) -> serializers.Field:
    if field.reference:
        return QuestionReferenceField(max_length=field.max_length, help_text=field.help_text)
    return serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=field.max_length, help_text=field.help_text
    )


# The request's schema, generated from the declaration `AuthorizationQuery` checks bodies by (see QuestionField): it
# documents the body and is never run on one.
AuthorizeRequestSchema = type(
    "AuthorizeRequestSchema",
    (serializers.Serializer,),
    {
        "__doc__": "The question: which tool, through which identity, for which human, which scope, on what.",
        "__module__": __name__,
        **{field.name: _schema_field(field) for field in QUESTION},
    },
)


class AuthorizeResponseSchema(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["allow", "deny"])
    reason = serializers.ChoiceField(choices=REASONS, help_text="Machine-readable and stable: gateways branch on it.")
    grant = serializers.IntegerField(allow_null=True, help_text="The grant that allows it; null on a deny.")
    event_id = serializers.IntegerField(help_text="The access event recording this decision.")
    replay_of = serializers.IntegerField(
        required=False,
        help_text="For a repeated request id: the event of the first answer. This one was decided afresh.",
    )
    errors = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="With `invalid_request`: what is wrong, per field."
    )


class AuthorizeView(APIView):
    """Deny by default: anything missing, unknown or ambiguous is a deny with a reason, never an error page."""

    permission_classes = [IsGatewayOrSecurity]
    # Per gateway account (AUTHORIZE_RATE), so one runaway gateway is refused while the others are still answered.
    throttle_classes = [AuthorizeThrottle]
    # A machine endpoint: JSON in, JSON out, nothing to negotiate on every call.
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="May this tool do this, for this human, now?",
        description=(
            "Ask before a tool acts. Deny by default: the answer is `allow` only with an active grant whose approval "
            "still meets the policy, for a human the tool may act for. Every answer is recorded as an access event.\n\n"
            "A question that does not fit this schema (missing or malformed fields, wrong types, a body that is not "
            "an object) is answered like any other: 200, `deny`, reason `invalid_request`, with `errors` per field. "
            "Only a body that is not JSON at all is a 400."
        ),
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
        query = AuthorizationQuery.from_body(request.data)
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
