"""The audit trail over the API (security only) and the chain check."""

import django_filters
from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import tasks
from inventory.audit import export, runs
from inventory.audit.record import audit_record
from inventory.models import AuditEntry, AuditVerification
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


_PROBLEM = inline_serializer(
    "AuditVerifyProblem",
    {
        "stream": serializers.CharField(),
        "batch": serializers.IntegerField(allow_null=True),
        "first_bad": serializers.IntegerField(allow_null=True),
        "problem": serializers.CharField(),
    },
)
_RUN = inline_serializer(
    "AuditVerifyRun",
    {
        "id": serializers.IntegerField(),
        # Plain strings: choice fields here would collide with other `kind` and `status` enums in the schema.
        "kind": serializers.CharField(help_text="full or incremental"),
        "status": serializers.CharField(help_text="queued or running"),
        "batches_done": serializers.IntegerField(),
        "batches_total": serializers.IntegerField(),
        "requested_by": serializers.CharField(),
    },
    allow_null=True,  # `run` is null while no run is queued or running
)
_VERIFY = inline_serializer(
    "AuditVerify",
    {
        "ok": serializers.BooleanField(),
        "checked": serializers.IntegerField(),
        "first_bad": serializers.IntegerField(allow_null=True),
        "stream": serializers.CharField(allow_null=True),
        "batch": serializers.IntegerField(allow_null=True),
        "problem": serializers.CharField(),
        "problems": serializers.ListField(child=_PROBLEM),
        "as_of": serializers.DateTimeField(allow_null=True),
        "kind": serializers.CharField(allow_null=True),
        "seconds": serializers.FloatField(allow_null=True),
        "last_full_at": serializers.DateTimeField(allow_null=True),
        "running": serializers.BooleanField(),
        "run": _RUN,
    },
)


@extend_schema_field({"type": "string", "enum": AuditVerification.Kind.values, "default": AuditVerification.Kind.FULL})
class _VerifyKindField(serializers.ChoiceField):
    """The choices inline in the schema: a named enum would collide with the other `kind` enums."""


class VerifyRequestSerializer(serializers.Serializer):
    kind = _VerifyKindField(
        choices=AuditVerification.Kind.values,
        default=AuditVerification.Kind.FULL,
        help_text="full (the default) or incremental",
        error_messages={"invalid_choice": "Choose full or incremental."},
    )


class VerifyAuditView(APIView):
    permission_classes = [IsSecurity]

    @extend_schema(
        summary="The audit chain's latest verification",
        description="The verdict of the latest finished verification of the sealed batches and their anchor: `ok`, how "
        "many entries were checked, and the first changed, deleted, inserted or reordered entry (`first_bad`) with "
        "what is wrong; `as_of` says when it finished, `running` and `run` whether a run is queued or running and "
        "how far it has got. Nothing is re-hashed by this request: workers verify incrementally every few minutes "
        "and in full every night, or when POST asks.",
        responses=_VERIFY,
    )
    def get(self, request):
        return Response(runs.verification_status())

    @extend_schema(
        summary="Queue a verification of the audit chain",
        description="Queue a full verification from the start of the chain (`kind`: `full`, the default) or of what "
        "was sealed since the last checkpoint (`incremental`). A run of that kind already queued or running is "
        "returned instead of a second one. 202 with the same answer as GET; follow it with GET.",
        request=VerifyRequestSerializer,
        responses={202: _VERIFY},
    )
    def post(self, request):
        serializer = VerifyRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verification_queue_for(request.user, serializer.validated_data["kind"])
        return Response(runs.verification_status(), status=status.HTTP_202_ACCEPTED)


def verification_queue_for(user, kind: str) -> None:
    """Queue a run for a person (page or API), the task after commit; audited, since it is an action on the trail."""
    with transaction.atomic():
        run, new = runs.verification_queue(kind=kind, requested_by=user.get_username())
        if new:
            audit_record(actor=user, action="audit.verification_queued", obj=run, after={"kind": kind})
            task = tasks.verify_audit_full if kind == AuditVerification.Kind.FULL else tasks.verify_audit_trail
            transaction.on_commit(lambda: task.delay(run.pk))


@extend_schema_field({"type": "string", "pattern": export.CURSOR_PATTERN})
class _CursorField(serializers.CharField):
    """Text whose rule is `Cursor.decode`'s, documented as its pattern."""


class ExportQuerySerializer(serializers.Serializer):
    after = _CursorField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,  # the pattern allows no space around it
        help_text="The cursor a previous response gave, as given: `EVENT:ENTRY`, the last access event id and audit "
        "entry id read. Empty or absent: from the start.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=export.MAX_LIMIT,
        help_text=f"Lines per response (default {export.DEFAULT_LIMIT}).",
    )

    def validate_after(self, value: str) -> export.Cursor:
        try:
            return export.Cursor.decode(value)
        except export.BadCursor as error:
            raise serializers.ValidationError(str(error)) from None


class _JSONErrors(BaseContentNegotiation):
    """The export answers NDJSON whatever the client accepts (a StreamingHttpResponse, no renderer); what goes through
    a renderer is an error, and that is JSON, the shape the schema documents, whatever `Accept` or `?format=` say."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class EventExportView(APIView):
    """NDJSON for a SIEM: decisions and audit entries in id order, bounded per response, resumable by cursor."""

    permission_classes = [IsSecurity]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONErrors

    @extend_schema(
        summary="Export decisions and audit entries (SIEM)",
        description="One JSON object a line: access events (`type` `access_event`: decisions, observed usage, tool "
        "listings) and audit entries (`type` `audit_entry`), each stream in id order, merged by the time the portal "
        "recorded them, with every column the row's hash-chain leaf covers. Only sealed rows are exported, so a "
        "reader never skips a row that committed late. At most `limit` lines (default 1000, at most 10000) per "
        'response; the last line is `{"type": "cursor", "next": CURSOR, "more": bool}` and the '
        "`X-Next-Cursor` header holds the same cursor: pass it as `after` to carry on. Without `after`, from the "
        "start. Errors are JSON.",
        parameters=[
            ExportQuerySerializer,
            OpenApiParameter(
                "X-Next-Cursor",
                str,
                location=OpenApiParameter.HEADER,
                response=[200],
                description="The cursor to pass as `after` to carry on.",
            ),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="NDJSON lines, the last one the cursor line."
            )
        },
    )
    def get(self, request):
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        cursor = query.validated_data.get("after") or export.Cursor()
        page = export.export_page(cursor, query.validated_data.get("limit", export.DEFAULT_LIMIT))
        response = StreamingHttpResponse(export.ndjson(page), content_type="application/x-ndjson")
        response["X-Next-Cursor"] = page.next.encode()
        response["Cache-Control"] = "no-store"
        return response
