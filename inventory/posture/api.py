"""Posture over the API: a tool's controls per framework, and the frameworks with pass rates across tools."""

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors
from inventory.models import ControlSnapshot, Framework
from inventory.posture import evaluate as posture


class FrameworkSerializer(serializers.ModelSerializer):
    control_count = serializers.IntegerField(read_only=True, help_text="Controls in force (retired ones aside).")

    class Meta:
        model = Framework
        fields = ["id", "key", "name", "version", "catalog_revision", "publisher", "source", "verification", "url"]
        fields += ["control_count"]


class FrameworkControlSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The control's id in its framework, e.g. NHI7 or PR.AA-05.")
    title = serializers.CharField()
    description = serializers.CharField()
    legacy_ids = serializers.ListField(child=serializers.CharField())
    detectors = serializers.ListField(child=serializers.CharField(), help_text="Detectors that evidence it.")
    assessed = serializers.BooleanField(help_text="Whether any detector evidences it.")
    pass_rate = serializers.FloatField(
        allow_null=True, help_text="Percent of assessed tools passing on the snapshot day; null without a snapshot."
    )
    tools_failing = serializers.IntegerField(allow_null=True)


class FrameworkDetailSerializer(FrameworkSerializer):
    snapshot_day = serializers.DateField(allow_null=True, help_text="The posture snapshot the pass rates are from.")
    controls = FrameworkControlSerializer(many=True, read_only=True)

    class Meta(FrameworkSerializer.Meta):
        fields = [*FrameworkSerializer.Meta.fields, "snapshot_day", "controls"]


class ControlPostureSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The control's id in its framework, e.g. NHI7 or PR.AA-05.")
    title = serializers.CharField()
    legacy_ids = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=["pass", "fail", "not_assessed"])
    attested = serializers.BooleanField(help_text="Passing on security's attestation rather than on evidence.")
    detectors = serializers.ListField(child=serializers.CharField())
    findings = serializers.ListField(child=serializers.IntegerField(), help_text="Open findings that fail it.")


class FrameworkPostureSerializer(serializers.Serializer):
    framework = serializers.CharField()
    version = serializers.CharField()
    assessed = serializers.IntegerField()
    passing = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True)
    controls = ControlPostureSerializer(many=True)


class ToolPostureSerializer(serializers.Serializer):
    tool = serializers.SlugField()
    risk_tier = serializers.ChoiceField(choices=["critical", "high", "medium", "low", "none"])
    frameworks = FrameworkPostureSerializer(many=True)


def tool_posture_payload(tool, frameworks, findings) -> list[dict]:
    payload = []
    for framework in frameworks:
        result = posture.tool_posture(tool, framework, findings=findings)
        payload.append(
            {
                "framework": framework.key,
                "version": framework.version,
                "assessed": result.assessed,
                "passing": result.passing,
                "score": result.score,
                "controls": [
                    {
                        "id": r.control.control_id,
                        "title": r.control.title,
                        "legacy_ids": r.control.legacy_ids,
                        "status": "pass" if r.status == "attested" else r.status,
                        "attested": r.status == "attested",
                        "detectors": r.detectors,
                        "findings": [f.pk for f in r.findings],
                    }
                    for r in result.results
                ],
            }
        )
    return payload


@extend_schema_view(
    list=extend_schema(description="The control frameworks loaded, with how many controls each has in force."),
    retrieve=extend_schema(
        description="One framework with its controls: which detectors evidence each, and its pass rate across tools "
        "on the latest posture snapshot.",
        responses=FrameworkDetailSerializer,
    ),
)
class FrameworkViewSet(viewsets.ReadOnlyModelViewSet):
    """Any signed-in user may read the catalog; pass rates come from the latest daily snapshot."""

    serializer_class = FrameworkSerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return Framework.objects.annotate(
            control_count=Count("controls", filter=Q(controls__retired_at=None))
        ).order_by("key")

    def retrieve(self, request, *args, **kwargs):
        framework = self.get_object()
        day = posture.latest_day(framework)
        snaps = {
            s.control_id: s for s in ControlSnapshot.objects.filter(control__framework=framework, day=day)
        } if day else {}  # fmt: skip
        mapped = posture.detectors_by_control()
        controls = []
        for control in framework.controls.filter(retired_at__isnull=True).order_by("order"):
            snap = snaps.get(control.pk)
            detectors = mapped.get(control.ref, [])
            rate = None
            if snap and snap.tools_assessed:
                rate = round(100 * (snap.tools_assessed - snap.tools_failing) / snap.tools_assessed, 1)
            controls.append(
                {"id": control.control_id, "title": control.title, "description": control.description,
                 "legacy_ids": control.legacy_ids, "detectors": detectors,
                 "assessed": bool(detectors), "pass_rate": rate,
                 "tools_failing": snap.tools_failing if snap else None}
            )  # fmt: skip
        data = self.get_serializer(framework).data | {"snapshot_day": day, "controls": controls}
        return Response(data)


class ToolPostureView(APIView):
    """GET /api/v1/tools/{id}/posture/: the tool's controls per framework. Visible exactly as the tool is (others'
    tools are 404)."""

    @extend_schema(
        operation_id="tools_posture_retrieve",
        summary="A tool's posture per framework",
        responses=ToolPostureSerializer,
        parameters=[OpenApiParameter("framework", str, description="Only this framework key.")],
    )
    def get(self, request, pk: int):
        tool = get_object_or_404(selectors.tool_list(user=request.user), pk=pk)
        frameworks = Framework.objects.order_by("key")
        if key := request.query_params.get("framework"):
            frameworks = frameworks.filter(key=key)
        findings = posture.tool_findings(tool)
        return Response({"tool": tool.slug, "risk_tier": posture.risk_tier(tool, findings=findings),
                         "frameworks": tool_posture_payload(tool, frameworks, findings)})  # fmt: skip
