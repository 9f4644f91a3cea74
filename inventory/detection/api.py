"""Findings and scans over the API."""

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory import tasks
from inventory.detection import containment, registry
from inventory.detection import triage as services
from inventory.detection.scan import scan_create
from inventory.models import AlertDelivery, Finding, FindingStatus, Scan, Severity, SubjectType
from nhi_portal.filters import StrictFilterBackend
from nhi_portal.permissions import IsSecurity
from nhi_portal.schema import error_response


class FindingSerializer(serializers.ModelSerializer):
    tool = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="The tool concerned, if the subject has one."
    )
    identity = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="The identity concerned, if any."
    )
    title = serializers.SerializerMethodField()
    controls = serializers.SerializerMethodField(help_text='Framework controls it evidences, as "FRAMEWORK:ID".')
    # From FindingQuerySet.with_last_seen(), which every queryset this serializes carries.
    last_seen_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Finding
        fields = [
            "id", "detector", "title", "severity", "status", "subject_type", "subject_id", "tool", "identity",
            "first_seen_at", "last_seen_at", "resolved_at", "acknowledged_at", "suppressed_until", "suppress_reason",
            "controls", "observed_at", "opened_at", "alerted_at", "contained_at",
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
    # Blank once trimmed is refused; the pattern says so to clients.
    reason = serializers.CharField(max_length=4000, help_text="Why it is hidden; read by whoever looks again.")
    until = serializers.DateTimeField(help_text="When it shows again: in the future and at most a year away.")


class ContainInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000, help_text="Why; kept in the audit trail.")


class ContainOutput(serializers.Serializer):
    contained = serializers.BooleanField()
    actions = serializers.ListField(child=serializers.CharField(), help_text="What was done, in words.")


class AlertDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertDelivery
        fields = ["id", "channel", "target", "findings", "digest", "status", "attempts", "last_error", "created_at",
                  "last_attempt_at", "delivered_at", "opened_at"]  # fmt: skip


class AlertDeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AlertDelivery.Status.choices)
    channel = django_filters.ChoiceFilter(choices=AlertDelivery.Channel.choices)

    class Meta:
        model = AlertDelivery
        fields = ["status", "channel"]


@extend_schema_view(
    list=extend_schema(description="Alert deliveries, newest first: e-mails and webhooks, delivered, pending, failed."),
    retrieve=extend_schema(description="One alert delivery with its attempts and last error."),
)
class AlertDeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Security sees every alert the portal sent or tried to send."""

    serializer_class = AlertDeliverySerializer
    permission_classes = [IsSecurity]
    filter_backends = [StrictFilterBackend]
    filterset_class = AlertDeliveryFilter
    queryset = AlertDelivery.objects.order_by("-id")
    lookup_value_regex = r"[0-9]+"


# A resolved finding cannot be triaged.
TRIAGED = {200: FindingSerializer, 409: error_response(409, "FieldErrors")}


@extend_schema_view(
    list=extend_schema(description="Findings the caller may see (owners: those about their tools), newest first."),
    retrieve=extend_schema(description="One finding, with the framework controls it evidences."),
)
class FindingViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = FindingSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = FindingFilter
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        findings = Finding.objects.visible_to(self.request.user).with_last_seen()
        return findings.select_related("tool", "identity").order_by("-id")

    def get_permissions(self):
        if self.action in ("acknowledge", "suppress", "confirm_change", "release"):
            return [IsSecurity()]
        return super().get_permissions()

    @extend_schema(
        summary="Contain the credential a finding is about",
        request=ContainInput,
        responses={200: ContainOutput, 403: error_response(403, "Error"), 409: error_response(409, "FieldErrors")},
    )
    @action(detail=True, methods=["post"])
    def contain(self, request, pk=None):
        """Mark the exposed credential compromised: from now on authorize through its identity answers `deny` with
        reason `credential_compromised`, until a new credential is registered and the compromised one revoked.
        Security, or the owner for their own tools' credential findings; audited with the reason."""
        finding = self.get_object()
        body = ContainInput(data=request.data)
        body.is_valid(raise_exception=True)
        answer = containment.finding_contain(actor=request.user, finding_id=finding.pk, **body.validated_data)
        return Response(answer)

    @extend_schema(
        summary="Lift a containment early (security)",
        request=ContainInput,
        responses={200: ContainOutput, 409: error_response(409, "FieldErrors")},
    )
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Security lifts a containment before a new credential replaced the compromised one, with a reason."""
        finding = self.get_object()
        body = ContainInput(data=request.data)
        body.is_valid(raise_exception=True)
        answer = containment.finding_release(actor=request.user, finding_id=finding.pk, **body.validated_data)
        return Response(answer)

    @extend_schema(summary="Acknowledge a finding", request=None, responses=TRIAGED)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Security has seen it and owns the follow-up; it stays open and scans keep checking it."""
        finding = self.get_object()
        services.findings_acknowledge(actor=request.user, ids=[finding.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)

    @extend_schema(summary="Suppress a finding until a date", request=SuppressInput, responses=TRIAGED)
    @action(detail=True, methods=["post"])
    def suppress(self, request, pk=None):
        """Hidden until `until`, with a reason; a scan that still sees it after that date reopens it."""
        finding = self.get_object()
        body = SuppressInput(data=request.data)
        body.is_valid(raise_exception=True)
        services.findings_suppress(actor=request.user, ids=[finding.pk], **body.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)

    @extend_schema(summary="Confirm a held risk-lowering change", request=ConfirmChangeInput, responses=TRIAGED)
    @action(detail=True, methods=["post"], url_path="confirm-change")
    def confirm_change(self, request, pk=None):
        """Security confirms an owner's risk-lowering change (a `fact_change_unreviewed` finding): it is applied and
        the finding resolves. The confirming user must not be the one who made the change; any other finding is 400."""
        finding = self.get_object()
        body = ConfirmChangeInput(data=request.data)
        body.is_valid(raise_exception=True)
        services.findings_confirm_changes(actor=request.user, ids=[finding.pk], **body.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)


class ScanSerializer(serializers.ModelSerializer):
    detectors = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="Detector keys to run; none: all."
    )

    class Meta:
        model = Scan
        fields = ["id", "status", "detectors", "progress", "total", "counts", "error", "created_at", "started_at"]
        fields += ["finished_at"]
        read_only_fields = ["status", "progress", "total", "counts", "error", "created_at", "started_at"]
        read_only_fields += ["finished_at"]

    def get_fields(self):
        # The registry is complete once every app is ready, after this class is defined: the keys are read here.
        fields = super().get_fields()
        keys = [d.key for d in registry.all_detectors()]
        fields["detectors"].child = serializers.ChoiceField(choices=keys)
        fields["detectors"].child.bind(field_name="", parent=fields["detectors"])
        return fields


@extend_schema_view(
    list=extend_schema(description="Scans, newest first, with their progress and what each detector found."),
    retrieve=extend_schema(description="One scan: `status` queued, running, done or failed, and `counts`."),
    create=extend_schema(
        summary="Queue a scan",
        description="Queue a scan of all detectors, or of those named. A worker runs it; follow it with GET.",
        responses={202: ScanSerializer},
    ),
)
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
