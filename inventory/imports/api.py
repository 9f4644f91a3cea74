"""`POST /api/v1/import/`: the bulk import, for security only. The rules live in `inventory.imports.document`."""

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http.request import RawPostDataException
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.imports.document import ImportRejected, document_error, inventory_import
from inventory.imports.rows import SECTIONS
from inventory.imports.sources.kinds import KINDS
from inventory.imports.sources.records import SourceRejected
from inventory.imports.sources.records import file_error as source_file_error
from inventory.imports.sources.sync import source_import
from inventory.models import SourceRun
from nhi_portal.permissions import IsSecurity
from nhi_portal.schema import error_response

# Rows are checked by the importer, per section and field; the schema says what a document is made of.
IMPORT_DOCUMENT = {
    "type": "object",
    "properties": {name: {"type": "array", "items": {"type": "object"}} for name in SECTIONS},
    "additionalProperties": False,
}
_COUNTS = {
    "type": "object",
    "properties": {name: {"type": "integer"} for name in ("created", "updated", "unchanged")},
}
IMPORT_RESULT = {
    "type": "object",
    "properties": {
        "counts": {"type": "object", "additionalProperties": _COUNTS, "description": "Per kind of object."},
        "audit_entry": {"type": "integer", "nullable": True, "description": "The import's summary audit entry."},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/RowError"}},
        "warnings_truncated": {"type": "boolean"},
    },
    "required": ["counts", "audit_entry", "warnings"],
}


def _rejected(errors: list[dict[str, Any]], *, truncated: bool = False) -> Response:
    body: dict[str, Any] = {"errors": errors}
    if truncated:
        body["truncated"] = True
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class _UnparsedBody(BaseParser):
    """Hands the view the raw body, at most one byte past the limit, whatever its media type.

    DRF's JSON parser would answer malformed JSON in its own error shape, and session authentication
    parses the body while checking CSRF, before the view runs. Reading it raw keeps every failure the
    import's 400, and bounds the memory an oversized upload can take.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read(settings.IMPORT_MAX_BYTES + 1)


def _read_document(request: Request) -> tuple[Any, str | None]:
    """The parsed body, or why it cannot be read. The messages never quote the body, which may hold secrets."""
    limit = settings.IMPORT_MAX_BYTES
    too_big = f"The document is larger than the {limit} bytes an import may be."
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refused before reading, so an oversized upload costs no memory.
    if declared > limit:
        return None, too_big
    try:
        body = request.data
    except RequestDataTooBig:
        return None, too_big
    except RawPostDataException:
        return None, "Send the document as the raw request body with Content-Type: application/json."
    if not isinstance(body, bytes) or not body.strip():
        return None, "The request body is empty; send a JSON document."
    if len(body) > limit:
        return None, too_big
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"Malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    except UnicodeDecodeError:
        return None, "Malformed JSON: the body is not UTF-8 text."
    except RecursionError:
        return None, "Malformed JSON: the document is nested too deeply."


class ImportView(APIView):
    """Upsert tools, identities, credentials and grants from one JSON document, all or nothing."""

    permission_classes = [IsSecurity]
    parser_classes = [_UnparsedBody]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="Import the inventory",
        request={"application/json": IMPORT_DOCUMENT},
        responses={
            200: OpenApiResponse(
                IMPORT_RESULT,
                description="Applied. `warnings`: changes left out of an applied row (row, section, field, path, "
                "message), e.g. un-revoking a revoked grant.",
            ),
            400: error_response(400, "RowErrors", description="Every problem with its row and path; nothing changed."),
        },
        description=(
            "Body: `{scopes, tools, identities, credentials, grants}` (all optional lists of objects). Rows are "
            "upserted by natural key; a credential `secret` is fingerprinted and dropped. Any error rejects the whole "
            "document. An import never un-revokes and never grants: imported grants authorize nothing until approved. "
            f"At most {settings.IMPORT_MAX_BYTES} bytes."
        ),
    )
    def post(self, request: Request) -> Response:
        document, problem = _read_document(request)
        if problem:
            return _rejected([document_error(problem)])
        try:
            result = inventory_import(actor=request.user, document=document)
        except ImportRejected as exc:
            return _rejected(exc.errors, truncated=exc.truncated)
        body: dict[str, Any] = {
            "counts": result.counts,
            "audit_entry": result.audit_entry_id,
            "warnings": result.warnings,
        }
        if result.warnings_truncated:
            body["warnings_truncated"] = True
        return Response(body)


# Discovery sources: `/sources/`, `/sources/{kind}/import/`, `/sources/runs/{id}/`. The rules live in
# `inventory.imports.sources.sync`; these views read the request and shape the answer.

_OBJECT_COUNTS = {
    "type": "object",
    "properties": {"identities": {"type": "integer"}, "credentials": {"type": "integer"}},
}
SOURCE_RESULT = {
    "type": "object",
    "properties": {
        "run": {"type": "integer", "nullable": True, "description": "The run; null for a dry run or a no-op."},
        "kind": {"type": "string"},
        "dry_run": {"type": "boolean"},
        **dict.fromkeys(("created", "updated", "unchanged", "gone"), _OBJECT_COUNTS),
        "warnings": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["run", "kind", "dry_run", "created", "updated", "unchanged", "gone", "warnings"],
}
_FLAGS = {"1": True, "true": True, "0": False, "false": False, "": False}


def run_data(run: SourceRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "kind": run.kind,
        "account": run.account,
        "full": run.full,
        "actor": run.actor_label,
        "file_digest": run.file_digest,
        "file_bytes": run.file_bytes,
        "counts": run.counts,
        "warnings": run.warnings,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def read_source_options(params) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`dry_run`, `full` and `account` from the query string; bad values are errors naming the parameter."""
    options: dict[str, Any] = {}
    errors = []
    for name in ("dry_run", "full"):
        value = params.get(name, "")
        if value.lower() not in _FLAGS:
            errors.append({"path": "", "field": name, "message": "Must be 1 or 0."})
        options[name] = _FLAGS.get(value.lower(), False)
    options["account"] = params.get("account", "")
    return options, errors


def _read_upload(request: Request) -> tuple[bytes | None, str | None]:
    """The file: multipart field `file`, or the raw body. Never quoted back: it may hold a Kubernetes token."""
    limit = settings.IMPORT_MAX_BYTES
    too_big = f"The file is larger than the {limit} bytes an import may be."
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None, too_big
    try:
        data = request.data
    except RequestDataTooBig:
        return None, too_big
    except (RawPostDataException, ParseError):
        return None, "Send the file as the request body, or as multipart field `file`."
    if isinstance(data, bytes):
        body = data
    else:
        upload = request.FILES.get("file")
        if upload is None:
            return None, "Send the file as the request body, or as multipart field `file`."
        if upload.size > limit:
            return None, too_big
        body = upload.read(limit + 1)
    if len(body) > limit:
        return None, too_big
    if not body.strip():
        return None, "The file is empty. An export that lists nothing is `[]` (or the provider's empty envelope)."
    return body, None


class SourceListView(APIView):
    """The source kinds this portal reads, with a description of each file format, and recent runs."""

    permission_classes = [IsSecurity]
    renderer_classes = [JSONRenderer]

    @extend_schema(summary="Discovery sources", responses={200: OpenApiResponse({"type": "object"})})
    def get(self, request: Request) -> Response:
        runs = SourceRun.objects.order_by("-started_at", "-pk")[:20]
        kinds = [{"kind": k, "provider": m.PROVIDER, "description": m.DESCRIPTION} for k, m in KINDS.items()]
        return Response({"kinds": kinds, "runs": [run_data(run) for run in runs]})


class SourceImportView(APIView):
    """Import one provider export: upsert by (provider, external_id), all or nothing."""

    permission_classes = [IsSecurity]
    parser_classes = [MultiPartParser, _UnparsedBody]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="Import a provider export",
        request={"application/octet-stream": {"type": "string", "format": "binary"}},
        parameters=[
            OpenApiParameter("dry_run", str, description="1: report only, change nothing."),
            OpenApiParameter("full", str, description="1: what this kind and account no longer lists is gone."),
            OpenApiParameter("account", str, description="Which account, org or tenant the file is from."),
        ],
        responses={
            200: OpenApiResponse(SOURCE_RESULT, description="Applied (or, for a dry run, what would change)."),
            400: error_response(400, "RowErrors", description="Every problem with its line or path and field."),
            404: error_response(404, "Error"),
        },
    )
    def post(self, request: Request, kind: str) -> Response:
        if kind not in KINDS:
            return Response({"detail": "No such source kind."}, status=status.HTTP_404_NOT_FOUND)
        options, errors = read_source_options(request.query_params)
        if errors:
            return _rejected(errors)
        raw, problem = _read_upload(request)
        if problem:
            return _rejected([source_file_error(problem)])
        try:
            result = source_import(actor=request.user, kind=kind, raw=raw, **options)
        except SourceRejected as exc:
            return _rejected(exc.errors, truncated=exc.truncated)
        return Response(result.as_dict())


class SourceRunView(APIView):
    """One run with its counts, warnings, who ran it and when."""

    permission_classes = [IsSecurity]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="A source run", responses={200: OpenApiResponse({"type": "object"}), 404: error_response(404, "Error")}
    )
    def get(self, request: Request, pk: int) -> Response:
        run = SourceRun.objects.filter(pk=pk).first()
        if run is None:
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(run_data(run))
