"""`POST /api/v1/import/`: the bulk import, for security only. The rules live in `inventory.imports.document`."""

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http.request import RawPostDataException
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.imports.document import ImportRejected, document_error, inventory_import
from inventory.imports.rows import SECTIONS
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
