"""GET /api/v1/me/: who the token belongs to. Lets a gateway check its token; the benchmarks use it as the floor."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from nhi_portal import roles


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Who am I",
        description="The account the credentials belong to and its portal roles: a gateway checks its token with it.",
        responses=inline_serializer(
            "Me", {"username": serializers.CharField(), "roles": serializers.ListField(child=serializers.CharField())}
        ),
    )
    def get(self, request):
        return Response({"username": request.user.get_username(), "roles": sorted(roles.roles_of(request.user))})
