"""Findings and scans over the API."""

import django_filters
from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory import tasks
from inventory.detection import registry
from inventory.detection import triage as services
from inventory.detection.scan import scan_create
from inventory.models import Finding, FindingStatus, Scan, Severity, SubjectType
from nhi_portal.permissions import IsSecurity


class FindingSerializer(serializers.ModelSerializer):
    tool = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    identity = serializers.SlugRelatedField(slug_field="name", read_only=True)
    title = serializers.SerializerMethodField()
    controls = serializers.SerializerMethodField()
    # From FindingQuerySet.with_last_seen(), which every queryset this serializes carries.
    last_seen_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Finding
        fields = [
            "id", "detector", "title", "severity", "status", "subject_type", "subject_id", "tool", "identity",
            "first_seen_at", "last_seen_at", "resolved_at", "acknowledged_at", "suppressed_until", "suppress_reason",
            "controls",
        ]  # fmt: skip

    def get_title(self, finding) -> str:
        return _detector(finding).title if _detector(finding) else finding.detector

    def get_controls(self, finding) -> list[str]:
        return list(_detector(finding).controls) if _detector(finding) else []


def _detector(finding):
    try:
        return registry.get(finding.detector)
    except KeyError:
        return None


class FindingFilter(django_filters.FilterSet):
    detector = django_filters.CharFilter()
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    status = django_filters.ChoiceFilter(choices=FindingStatus.choices)
    subject_type = django_filters.ChoiceFilter(choices=SubjectType.choices)
    tool = django_filters.CharFilter(field_name="tool__slug")
    team = django_filters.CharFilter(field_name="tool__team__slug")
    owner = django_filters.CharFilter(field_name="tool__owner__username")

    class Meta:
        model = Finding
        fields = ["detector", "severity", "status", "subject_type", "tool", "team", "owner"]


class ConfirmChangeInput(serializers.Serializer):
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class SuppressInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)
    until = serializers.DateTimeField()


class FindingViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = FindingSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = FindingFilter
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        findings = Finding.objects.visible_to(self.request.user).with_last_seen()
        return findings.select_related("tool", "identity").order_by("-id")

    def get_permissions(self):
        if self.action in ("acknowledge", "suppress", "confirm_change"):
            return [IsSecurity()]
        return super().get_permissions()

    @extend_schema(request=None, responses=FindingSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        finding = self.get_object()
        services.findings_acknowledge(actor=request.user, ids=[finding.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)

    @extend_schema(request=SuppressInput, responses=FindingSerializer)
    @action(detail=True, methods=["post"])
    def suppress(self, request, pk=None):
        finding = self.get_object()
        body = SuppressInput(data=request.data)
        body.is_valid(raise_exception=True)
        services.findings_suppress(actor=request.user, ids=[finding.pk], **body.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)

    @extend_schema(request=ConfirmChangeInput, responses=FindingSerializer)
    @action(detail=True, methods=["post"], url_path="confirm-change")
    def confirm_change(self, request, pk=None):
        """Security confirms an owner's risk-lowering change (a `fact_change_unreviewed` finding): it resolves."""
        finding = self.get_object()
        body = ConfirmChangeInput(data=request.data)
        body.is_valid(raise_exception=True)
        services.findings_confirm_changes(actor=request.user, ids=[finding.pk], **body.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)


class ScanSerializer(serializers.ModelSerializer):
    detectors = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    class Meta:
        model = Scan
        fields = ["id", "status", "detectors", "progress", "total", "counts", "error", "created_at", "started_at"]
        fields += ["finished_at"]
        read_only_fields = ["status", "progress", "total", "counts", "error", "created_at", "started_at"]
        read_only_fields += ["finished_at"]

    def validate_detectors(self, value):
        known = {d.key for d in registry.all_detectors()}
        if unknown := sorted(set(value) - known):
            raise serializers.ValidationError(f"Unknown detector(s): {', '.join(unknown)}.")
        return value


class ScanViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """POST queues a scan (202) that a Celery worker runs; GET follows its progress."""

    serializer_class = ScanSerializer
    permission_classes = [IsSecurity]
    queryset = Scan.objects.order_by("-id")
    lookup_value_regex = r"[0-9]+"

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            scan = scan_create(requested_by=request.user, detectors=serializer.validated_data["detectors"])
            transaction.on_commit(lambda: tasks.run_scan.delay(scan.pk))
        return Response(self.get_serializer(scan).data, status=status.HTTP_202_ACCEPTED)
