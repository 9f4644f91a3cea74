"""Security's review of what discovery found, over the API: suggested AI tools (`/sources/suggestions/`, accept,
dismiss) and the Unassigned queue (`/sources/unassigned/`, assign). The rules live in
`inventory.imports.sources.review`; these views check the input's shape and call one service each."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.choices import DataClassification, Environment
from inventory.models import AIToolSuggestion
from nhi_portal.permissions import IsSecurity
from nhi_portal.schema import error_response

from .sources.review import (
    MAX_ASSIGN,
    MAX_REASON,
    suggestion_accept,
    suggestion_data,
    suggestion_dismiss,
    suggestions_for_review,
    unassigned_assign,
    unassigned_identities,
)

User = get_user_model()
PAGE = 100


def _owner(username: str | None):
    """The named active user, None when not named; a name that matches nobody is the caller's 400."""
    if not username:
        return None
    return User.objects.filter(username=username, is_active=True).first() or False


class AcceptSerializer(serializers.Serializer):
    owner = serializers.CharField(
        required=False, allow_blank=True, max_length=150, help_text="Username; you if omitted."
    )
    slug = serializers.SlugField(required=False, allow_blank=True, max_length=120)
    environment = serializers.ChoiceField(Environment.choices, default=Environment.PROD)
    data_classification = serializers.ChoiceField(DataClassification.choices, default=DataClassification.INTERNAL)


class DismissSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_REASON)


class AssignSerializer(serializers.Serializer):
    identities = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1,
                                       max_length=MAX_ASSIGN)  # fmt: skip
    owner = serializers.CharField(max_length=150)


# The answers, as the schema documents them (drf-spectacular): the views build the same dicts, field for field.


class SuggestionIdentitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    provider = serializers.CharField()


class SuggestionToolSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()


class SuggestionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    catalog_key = serializers.CharField()
    catalog_version = serializers.CharField()
    name = serializers.CharField()
    vendor = serializers.CharField(allow_blank=True)
    tool_kind = serializers.CharField()
    status = serializers.ChoiceField(AIToolSuggestion.Status.choices)
    first_seen_at = serializers.DateTimeField()
    identity_count = serializers.IntegerField()
    identities = SuggestionIdentitySerializer(many=True, help_text="The first few of the identities it matched.")
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    tool = SuggestionToolSerializer(allow_null=True, help_text="The tool registered on accepting it.")


class SuggestionListSerializer(serializers.Serializer):
    results = SuggestionSerializer(many=True)


class UnassignedIdentitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    provider = serializers.CharField()
    external_id = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class UnassignedPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Identities in the queue.")
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    results = UnassignedIdentitySerializer(many=True)


class AssignedSerializer(serializers.Serializer):
    assigned = serializers.IntegerField()
    owner = serializers.CharField()


STATUSES = [*AIToolSuggestion.Status.values, "all"]


class SuggestionListView(APIView):
    """Suggested AI tools: what the catalog recognised among discovered identities."""

    permission_classes = [IsSecurity]

    @extend_schema(
        summary="Suggested AI tools",
        parameters=[OpenApiParameter("status", str, enum=STATUSES, default=AIToolSuggestion.Status.OPEN,
                                     description="open (default), accepted, dismissed or all.")],
        responses={200: SuggestionListSerializer, 400: error_response(400, "FieldErrors", "Error")},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status", AIToolSuggestion.Status.OPEN)
        if wanted not in STATUSES:
            return Response({"status": ["One of open, accepted, dismissed or all."]}, status=400)
        rows = suggestions_for_review(status=None if wanted == "all" else wanted, limit=PAGE)
        return Response({"results": [suggestion_data(s) for s in rows]})


class SuggestionAcceptView(APIView):
    """Register the suggested tool and bind its identities, in one transaction."""

    permission_classes = [IsSecurity]

    @extend_schema(
        summary="Accept a suggested AI tool",
        request=AcceptSerializer,
        responses={200: OpenApiResponse({"type": "object"}), 400: error_response(400, "FieldErrors", "Error"),
                   409: error_response(409, "Error")},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        if not AIToolSuggestion.objects.filter(pk=pk).exists():
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        form = AcceptSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        owner = _owner(form.validated_data.get("owner"))
        if owner is False:
            return Response({"owner": ["No active portal user has this username."]}, status=400)
        tool = suggestion_accept(
            actor=request.user, suggestion_id=pk, owner=owner, slug=form.validated_data.get("slug", ""),
            environment=form.validated_data["environment"],
            data_classification=form.validated_data["data_classification"],
        )  # fmt: skip
        return Response({"accepted": True, "tool": {"id": tool.pk, "slug": tool.slug, "name": tool.name}})


class SuggestionDismissView(APIView):
    """Close a suggestion with the reason it is not a tool to register."""

    permission_classes = [IsSecurity]

    @extend_schema(
        summary="Dismiss a suggested AI tool",
        request=DismissSerializer,
        responses={200: OpenApiResponse({"type": "object"}), 400: error_response(400, "FieldErrors", "Error"),
                   409: error_response(409, "Error")},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        if not AIToolSuggestion.objects.filter(pk=pk).exists():
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        form = DismissSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        suggestion = suggestion_dismiss(actor=request.user, suggestion_id=pk, reason=form.validated_data["reason"])
        return Response({"dismissed": True, "id": suggestion.pk})


def unassigned_data(identity) -> dict[str, Any]:
    return {"id": identity.pk, "name": identity.name, "provider": identity.provider,
            "external_id": identity.external_id, "kind": identity.kind, "status": identity.status,
            "created_at": identity.created_at}  # fmt: skip


class UnassignedListView(APIView):
    """The Unassigned queue: discovered identities no file attributed to a portal user."""

    permission_classes = [IsSecurity]

    @extend_schema(
        summary="The Unassigned queue",
        parameters=[OpenApiParameter("page", {"type": "integer", "minimum": 1},
                                     description="From 1; past the last page, the last page.")],
        responses={200: UnassignedPageSerializer, 400: error_response(400, "FieldErrors", "Error")},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        asked = request.query_params.get("page", "1")
        if not (asked.isascii() and asked.isdigit() and int(asked) >= 1):
            return Response({"page": ["A page number from 1."]}, status=400)
        paginator = Paginator(unassigned_identities(), PAGE)
        page = paginator.get_page(asked)
        return Response({"count": paginator.count, "page": page.number, "pages": paginator.num_pages,
                         "results": [unassigned_data(i) for i in page]})  # fmt: skip


class UnassignedAssignView(APIView):
    """Give identities from the queue to an owner, all or none."""

    permission_classes = [IsSecurity]

    @extend_schema(
        summary="Assign owners from the Unassigned queue",
        request=AssignSerializer,
        responses={200: AssignedSerializer, 400: error_response(400, "FieldErrors", "Error")},
    )
    def post(self, request: Request) -> Response:
        form = AssignSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        owner = _owner(form.validated_data["owner"])
        if not owner:
            return Response({"owner": ["No active portal user has this username."]}, status=400)
        count = unassigned_assign(actor=request.user, identity_ids=form.validated_data["identities"], owner=owner)
        return Response({"assigned": count, "owner": owner.get_username()})
