"""The audit trail over the API (security only) and the chain check."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.audit.verify import verify
from inventory.models import AuditEntry
from nhi_portal.filters import StrictFilterBackend
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


@extend_schema_view(
    list=extend_schema(
        summary="List audit entries",
        description="Every state change, newest first, with the changed fields before and after (fingerprints, never "
        "secrets). Append-only and sealed into a hash chain; `?since=` and `?until=` bound the time.",
    ),
    retrieve=extend_schema(summary="Get an audit entry", description="One audit entry."),
)
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsSecurity]
    serializer_class = AuditEntrySerializer
    queryset = AuditEntry.objects.order_by("-id")
    filter_backends = [StrictFilterBackend]
    filterset_class = AuditEntryFilter


class VerifyAuditView(APIView):
    permission_classes = [IsSecurity]

    @extend_schema(
        summary="Verify the audit chain",
        description="Recheck the sealed batches and their anchor: `ok`, how many entries were checked, and the first "
        "changed, deleted, inserted or reordered entry (`first_bad`) with what is wrong.",
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
        ),
    )
    def get(self, request):
        return Response(verify().as_dict())
