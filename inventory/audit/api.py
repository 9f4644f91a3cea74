"""The audit trail over the API (security only) and the chain check."""

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.audit.sealing import verify
from inventory.models import AuditEntry
from nhi_portal.permissions import IsSecurity


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
