"""Posture over the API: a tool's controls per framework, and the frameworks with pass rates across tools."""

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors
from inventory.models import ControlSnapshot, Framework, FrameworkSnapshot
from inventory.posture import evaluate as posture
from inventory.posture.evidence import evidence_map


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
    group = serializers.CharField(help_text="Its family, category or theme; empty for flat lists.")
    detectors = serializers.ListField(child=serializers.CharField(), help_text="Detectors that decide it (primary).")
    supporting = serializers.ListField(
        child=serializers.CharField(), help_text="Detectors that are related evidence only: they never decide it."
    )
    assessed = serializers.BooleanField(help_text="Whether the portal assesses it: a detector is primary for it.")
    pass_rate = serializers.FloatField(
        allow_null=True,
        help_text="Percent of the tools with evidence that pass, on the snapshot day; null without a snapshot.",
    )
    tools_failing = serializers.IntegerField(allow_null=True)
    tools_unassessed = serializers.IntegerField(
        allow_null=True, help_text="Tools without evidence for it (nothing to examine, or not scanned since a change)."
    )


class CoverageSerializer(serializers.Serializer):
    controls = serializers.IntegerField(help_text="Controls in force.")
    assessable = serializers.IntegerField(help_text="Of those, assessed by the portal (a detector is primary).")
    not_assessed = serializers.IntegerField(help_text="Of those, not assessed by the portal.")
    attested = serializers.IntegerField(help_text="Of the not assessed ones, attested for at least one tool.")
    tools = serializers.IntegerField()
    passing = serializers.IntegerField(help_text="(tool, control) results with evidence that pass.")
    failing = serializers.IntegerField()
    unassessed = serializers.IntegerField(help_text="(tool, assessed control) results without evidence.")
    pass_rate = serializers.FloatField(allow_null=True, help_text="passing / (passing + failing), in percent.")


class FrameworkDetailSerializer(FrameworkSerializer):
    snapshot_day = serializers.DateField(allow_null=True, help_text="The posture snapshot the pass rates are from.")
    coverage = CoverageSerializer(allow_null=True, help_text="How much of the framework the portal assesses.")
    controls = FrameworkControlSerializer(many=True, read_only=True)

    class Meta(FrameworkSerializer.Meta):
        fields = [*FrameworkSerializer.Meta.fields, "groups", "snapshot_day", "coverage", "controls"]


class ControlPostureSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The control's id in its framework, e.g. NHI7 or PR.AA-05.")
    title = serializers.CharField()
    legacy_ids = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(
        choices=["pass", "fail", "not_assessed"], help_text="pass only on evidence; attested controls are not_assessed"
    )
    reason = serializers.ChoiceField(
        choices=["", "no_subjects", "not_scanned", "unmapped", "attested"], help_text="Why it is not_assessed."
    )
    reason_text = serializers.CharField()
    attested = serializers.BooleanField(help_text="Security attested it (a control no detector assesses).")
    detectors = serializers.ListField(child=serializers.CharField(), help_text="Primary detectors: they decide.")
    supporting = serializers.ListField(child=serializers.CharField(), help_text="Related evidence, never deciding.")
    findings = serializers.ListField(child=serializers.IntegerField(), help_text="Open findings that fail it.")
    related_findings = serializers.ListField(
        child=serializers.IntegerField(), help_text="Open findings of its supporting detectors (not deciding)."
    )


class FrameworkPostureSerializer(serializers.Serializer):
    framework = serializers.CharField()
    version = serializers.CharField()
    assessed = serializers.IntegerField(help_text="Controls with evidence for the tool: passing or failing.")
    passing = serializers.IntegerField()
    failing = serializers.IntegerField()
    assessable = serializers.IntegerField(help_text="Controls the portal assesses (a detector is primary for them).")
    awaiting = serializers.IntegerField(help_text="Assessable controls without evidence for this tool.")
    attested = serializers.IntegerField()
    controls_total = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="passing / assessed, in percent.")
    controls = ControlPostureSerializer(many=True)


class ToolPostureSerializer(serializers.Serializer):
    tool = serializers.SlugField()
    risk_tier = serializers.ChoiceField(choices=["critical", "high", "medium", "low", "none"])
    frameworks = FrameworkPostureSerializer(many=True)


def tool_posture_payload(tool, frameworks, findings) -> list[dict]:
    payload = []
    evidence = evidence_map()
    for framework in frameworks:
        result = posture.tool_posture(tool, framework, findings=findings, evidence=evidence)
        payload.append(
            {
                "framework": framework.key,
                "version": framework.version,
                "assessed": result.assessed,
                "passing": result.passing,
                "failing": result.failing,
                "assessable": result.assessable,
                "awaiting": result.awaiting,
                "attested": result.attested,
                "controls_total": len(result.results),
                "score": result.score,
                "controls": [
                    {
                        "id": r.control.control_id,
                        "title": r.control.title,
                        "legacy_ids": r.control.legacy_ids,
                        "status": "not_assessed" if r.status == "attested" else r.status,
                        "reason": "attested" if r.status == "attested" else r.reason,
                        "reason_text": "attested by security" if r.status == "attested" else r.reason_text,
                        "attested": r.status == "attested",
                        "detectors": r.detectors,
                        "supporting": r.supporting,
                        "findings": [f.pk for f in r.findings],
                        "related_findings": [f.pk for f in r.related],
                    }
                    for r in result.results
                ],
            }
        )
    return payload


@extend_schema_view(
    list=extend_schema(description="The control frameworks loaded, with how many controls each has in force."),
    retrieve=extend_schema(
        description="One framework with its coverage (how many of its controls the portal assesses) and its controls: "
        "which detectors decide each (primary) and which are related evidence (supporting), and its pass rate across "
        "the tools with evidence on the latest posture snapshot. `?assessed=1`: only the controls the portal assesses.",
        responses=FrameworkDetailSerializer,
        parameters=[OpenApiParameter("assessed", str, enum=["1"], description="Only the assessed controls.")],
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
        evidence = evidence_map()
        only_assessed = request.query_params.get("assessed") == "1"
        controls = []
        for control in framework.controls.filter(retired_at__isnull=True).order_by("order"):
            control.framework = framework
            snap = snaps.get(control.pk)
            detectors = evidence.primary.get(control.ref, [])
            if only_assessed and not detectors:
                continue
            rate = None
            if snap and snap.tools_assessed:
                rate = round(100 * (snap.tools_assessed - snap.tools_failing) / snap.tools_assessed, 1)
            controls.append(
                {"id": control.control_id, "title": control.title, "description": control.description,
                 "legacy_ids": control.legacy_ids, "group": control.group, "detectors": detectors,
                 "supporting": evidence.supporting.get(control.ref, []),
                 "assessed": bool(detectors), "pass_rate": rate,
                 "tools_failing": snap.tools_failing if snap else None,
                 "tools_unassessed": snap.tools_unassessed if snap else None}
            )  # fmt: skip
        coverage = FrameworkSnapshot.objects.filter(framework=framework, day=day).first() if day else None
        coverage_data = None
        if coverage:
            names = ("controls", "assessable", "not_assessed", "attested", "tools", "passing", "failing", "unassessed")
            coverage_data = {name: getattr(coverage, name) for name in names} | {"pass_rate": coverage.pass_rate}
        data = self.get_serializer(framework).data | {
            "groups": framework.groups,
            "snapshot_day": day,
            "coverage": coverage_data,
            "controls": controls,
        }
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
