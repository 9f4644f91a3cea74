"""GET, POST /api/v1/tokens/ and POST /api/v1/tokens/{id}/revoke/: the rules are in tokens.py."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from nhi_portal import roles
from nhi_portal.schema import error_response

from . import token_use, tokens


class MayManageOwnTokens(BasePermission):
    """Every signed-in human, managers included (a token to read the API changes nothing); gateways' tokens are
    security's to manage."""

    def has_permission(self, request, view) -> bool:
        return roles.may_use_portal(request.user)


class TokenSerializer(serializers.Serializer):
    id = serializers.SerializerMethodField()
    user = serializers.CharField(source="user.username")
    tools = serializers.SerializerMethodField(help_text="The tools a gateway token is limited to; null: any tool.")
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField(source="expiry")
    last_used = serializers.DateTimeField(
        source="use.last_used_at",
        allow_null=True,
        read_only=True,
        help_text=f"When it last authenticated a request, to within {token_use.RECORD_EVERY.seconds // 60} minutes; "
        "null: never.",
    )

    def get_id(self, token) -> str:
        return tokens.public_id(token)

    def get_tools(self, token) -> list[str] | None:
        return tokens.tool_slugs(token)


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.SerializerMethodField(help_text="The token itself: shown in this answer only.")

    def get_token(self, token) -> str:
        return self.context["text"]


class IssueSerializer(serializers.Serializer):
    user = serializers.CharField(required=False, max_length=150, help_text="Default: yourself.")
    days = serializers.IntegerField(required=False, min_value=1, max_value=tokens.MAX_DAYS)
    tools = serializers.ListField(child=serializers.SlugField(max_length=100), required=False, max_length=100)


class TokenListView(ListAPIView):
    permission_classes = [MayManageOwnTokens]
    serializer_class = TokenSerializer
    filter_backends = []

    def get_queryset(self):
        return tokens.tokens_visible_to(self.request.user)

    @extend_schema(
        summary="List API tokens",
        description="Your own unexpired tokens; security also sees gateway accounts' tokens. Never the tokens "
        "themselves: only their ids.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Issue an API token",
        description="For yourself, or (security) for a gateway account, optionally limited to tools. The answer holds "
        "the token; it is shown this once and stored only hashed. Audited.",
        request=IssueSerializer,
        responses={201: IssuedTokenSerializer, 400: error_response(400, "FieldErrors", "Error")},
    )
    def post(self, request):
        data = IssueSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token, text = tokens.token_issue(
                actor=request.user,
                username=data.validated_data.get("user"),
                days=data.validated_data.get("days"),
                tools=data.validated_data.get("tools"),
            )
        except tokens.TokenRefused as refused:
            return Response({k: [v] for k, v in refused.errors.items()}, status=status.HTTP_400_BAD_REQUEST)
        body = IssuedTokenSerializer(token, context={"text": text}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class TokenRevokeView(APIView):
    permission_classes = [MayManageOwnTokens]

    @extend_schema(
        summary="Revoke an API token",
        description="One of the tokens you may list; it stops authenticating at once. Audited.",
        parameters=[
            OpenApiParameter(
                "token_id",
                str,
                OpenApiParameter.PATH,
                pattern=f"^[0-9a-f]{{{tokens.ID_LENGTH}}}$",
                description="The token's id, as the list gives it.",
            )
        ],
        request=None,
        responses={204: None, 404: error_response(404, "Error")},
    )
    def post(self, request, token_id: str):
        token = tokens.token_get(user=request.user, token_id=token_id)
        if token is None:
            raise Http404
        tokens.token_revoke(actor=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
