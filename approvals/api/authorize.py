"""POST /api/v1/authorize/: the decision gateways ask for before a tool acts; /authorize/batch/: a tool listing's."""

import time

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.authorization import (
    MAX_LISTING,
    QUESTION,
    REASONS,
    AuthorizationQuery,
    ListingInvalid,
    QuestionField,
    authorize,
    authorize_listing,
)
from nhi_portal import metrics
from nhi_portal.parsers import StrictJSONParser
from nhi_portal.permissions import IsGatewayOrSecurity
from nhi_portal.schema import error_response
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
        started = time.perf_counter()
        query = AuthorizationQuery.from_body(request.data)
        token = request.auth if hasattr(request.auth, "digest") else None
        decision = authorize(query=query, source=request.user.get_username(), token=token)
        metrics.observe_decision(decision.decision, decision.reason, time.perf_counter() - started)
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


class ListingCheckSchema(serializers.Serializer):
    scope = QuestionReferenceField(max_length=200, help_text="A scope the tool's call would need: id or name.")
    resource = serializers.CharField(required=False, allow_blank=True, max_length=500)
    any_resource = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Ask whether any resource could be allowed (a live, approved grant for the scope, whatever its "
        "resource constraint), e.g. to list a tool whose resource comes from the call's arguments.",
    )


class ListingRequestSchema(serializers.Serializer):
    """Which of these would be allowed now: one tool, identity and human; many scope and resource pairs."""

    tool = QuestionReferenceField(max_length=200, help_text="The AI tool: its id, or its slug.")
    identity = QuestionReferenceField(max_length=200, help_text="The identity it acts through: id or name.")
    on_behalf_of = QuestionReferenceField(max_length=200, help_text="The human: id or username.")
    agent = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    action = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    checks = ListingCheckSchema(many=True, min_length=1, max_length=MAX_LISTING)


class ListingAnswerSchema(serializers.Serializer):
    scope = serializers.CharField()
    resource = serializers.CharField()
    decision = serializers.ChoiceField(choices=["allow", "deny"])
    reason = serializers.ChoiceField(choices=REASONS)
    grant = serializers.IntegerField(allow_null=True)


class ListingResponseSchema(serializers.Serializer):
    event_id = serializers.IntegerField(help_text="The one access event (kind `list`) recording this listing.")
    answers = ListingAnswerSchema(many=True, help_text="One per check, in the order asked.")


class AuthorizeBatchView(APIView):
    """A tool listing's question: the same rules as /authorize/ for many pairs at once; it grants nothing."""

    permission_classes = [IsGatewayOrSecurity]
    throttle_classes = [AuthorizeThrottle]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="Which of these may this tool do, for this human, now?",
        description=(
            "Ask once for many scope and resource pairs of one tool, identity and human, e.g. to list only the MCP "
            "tools a human may call. Each pair is answered by the rules of POST /authorize/; nothing is granted "
            "(the call itself must still be authorized), and the listing is recorded as one access event of kind "
            "`list`. A malformed body is a 400 with errors per field, and nothing is recorded."
        ),
        request=ListingRequestSchema,
        responses={
            200: ListingResponseSchema,
            400: error_response(400, "FieldErrors", "Error", description="Malformed question."),
        },
    )
    def post(self, request):
        token = request.auth if hasattr(request.auth, "digest") else None
        try:
            listing = authorize_listing(body=request.data, source=request.user.get_username(), token=token)
        except ListingInvalid as error:
            return Response({k: [v] for k, v in error.errors.items()}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"event_id": listing.event_id, "answers": listing.answers}, status=status.HTTP_200_OK)
