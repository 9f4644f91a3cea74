"""The OpenAPI schema as the contract: every operation lists the answers it really gives, errors included.

`PortalAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) adds to what each view declares for success:

- the error answers that come from the project's plumbing rather than from one view, in the shapes
  `nhi_portal.exceptions` gives them: 400 (`{"field": ["message"]}` or `{"detail": "..."}`, and `text/plain` from
  the NUL refusal in `middleware.py`), 401 (no or a bad token), 403 (a role that may not, or a session without its
  CSRF token), 404 (an object the caller may not see, a page past the end), 415 (a body in a media type the operation
  does not read), 429 (too many failed token checks from one address, or a gateway over its /authorize/ budget);
- a tag per resource (`/api/v1/<resource>/...`) instead of the version segment, a summary, and who may call it;
- on request bodies, what DRF and the apps refuse but drf-spectacular does not say: `pattern` for text fields whose
  validators are registered in `VALIDATOR_PATTERNS` (the rule said twice, as Python for the server and as a regular
  expression for clients; tests hold the two equal), at least one non-space character where DRF trims and refuses
  blank, and list bounds (`allow_empty=False`, a nested list's `min_length` / `max_length`);
- request bodies in JSON only, the contract's media type.

A view declares the answers that are its own (409 conflicts, an `{"errors": [...]}` 400) with `extend_schema`;
those are kept as declared.
"""

import re

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_view_model
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated

from . import permissions

# Validator callables of the apps -> the regular expression that accepts exactly what they accept.
VALIDATOR_PATTERNS: dict = {}

ERROR_SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "An error that concerns the whole request: 401, 403, 404, 405, 406, 415, 429.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "FieldErrors": {
        "type": "object",
        "description": (
            "400 and 409: the messages per field of the request (`detail` or `non_field_errors` when they concern no "
            "one field); a nested field's messages nest the same way (an object, or a list per item)."
        ),
        "additionalProperties": {
            "oneOf": [
                {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
                {"type": "object"},
            ]
        },
        "minProperties": 1,
    },
    "RowError": {
        "type": "object",
        "description": "One problem of a batch, where it is: `row` (from 0) of `section`, `field`, `path`.",
        "properties": {
            "row": {"type": "integer", "nullable": True},
            "line": {"type": "integer", "nullable": True},
            "section": {"type": "string", "nullable": True},
            "field": {"type": "string", "nullable": True},
            "path": {"type": "string", "nullable": True},
            "message": {"type": "string"},
        },
        "required": ["message"],
    },
    "RowErrors": {
        "type": "object",
        "description": "400 of a batch (import, usage events): every problem with the row it is in; nothing applied.",
        "properties": {
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/RowError"}},
            "truncated": {"type": "boolean", "description": "Only the first problems are listed."},
        },
        "required": ["errors"],
    },
}

DESCRIPTIONS = {
    "400": "Invalid input: what is wrong, per field. Nothing was changed.",
    "401": "No credentials, or a token that is unknown or expired.",
    "403": "Signed in, but this role may not do this (or a browser session sent no CSRF token).",
    "404": "No such object that the caller may see (existence is not revealed), or a page past the end.",
    "409": "The object is not in a state that allows this.",
    "415": "The body is not in a media type this operation reads.",
    "429": "Too many requests: failed token checks from this address, or this gateway's /authorize/ budget.",
}

AUDIENCES = {
    permissions.IsPortalUser: (
        "Signed-in people (not gateway accounts): owners see and change what they own, security everything, managers "
        "read everything."
    ),
    permissions.IsSecurity: "The security team only.",
    permissions.IsGatewayOrSecurity: "Gateway accounts and the security team.",
    IsAuthenticated: "Anyone signed in, gateway accounts included.",
}

SUMMARIES = {
    "list": "List {plural}",
    "retrieve": "Get a {singular}",
    "create": "Create a {singular}",
    "partial_update": "Change a {singular}",
    "update": "Replace a {singular}",
    "destroy": "Delete a {singular}",
}

_VERSION = re.compile(r"^v[0-9]+$")
# DRF trims text fields and then refuses what is left blank.
NOT_BLANK = "\\S"


def _constrain_text(field, prop: dict) -> None:
    """What the server refuses in a text field of a request, as schema: a registered validator's pattern, and for a
    field DRF trims and refuses blank, at least one character that is not white space."""
    patterns = [pattern for known, pattern in VALIDATOR_PATTERNS.items() if any(v is known for v in field.validators)]
    if isinstance(field, serializers.CharField) and field.trim_whitespace and not field.allow_blank:
        patterns.append(NOT_BLANK)
    for pattern in patterns:
        if "pattern" not in prop:
            prop["pattern"] = pattern
        elif pattern != prop["pattern"]:
            prop.setdefault("allOf", []).append({"pattern": pattern})


def _constrain_list(field, prop: dict) -> None:
    """DRF's list bounds that drf-spectacular leaves out: `allow_empty=False`, and a nested `many=True` serializer's
    `min_length` / `max_length`."""
    least = max(0 if getattr(field, "allow_empty", True) else 1, getattr(field, "min_length", None) or 0)
    if least:
        prop["minItems"] = max(prop.get("minItems", 0), least)
    most = getattr(field, "max_length", None)
    if most is not None:
        prop["maxItems"] = min(prop.get("maxItems", most), most)


def _schema_of(*names: str) -> dict:
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in names]
    return refs[0] if len(refs) == 1 else {"anyOf": refs}


def error_response(code: int, *names: str, description: str = "") -> OpenApiResponse:
    """For a view's `extend_schema(responses=...)`: an error answer in one or more of the shapes above."""
    return OpenApiResponse(_schema_of(*names), description=description or DESCRIPTIONS[str(code)])


def _error_object(code: int, *names: str) -> dict:
    return {"description": DESCRIPTIONS[str(code)], "content": {"application/json": {"schema": _schema_of(*names)}}}


class PortalAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None:
            operation["responses"] = self._with_errors(operation)
        return operation

    def map_parsers(self):
        # The contract is JSON in (API.md); the form parsers serve the browsable API's forms and are not part of it.
        media_types = super().map_parsers()
        return [m for m in media_types if m == "application/json"] or media_types

    def get_tags(self) -> list[str]:
        tokens = [t for t in self._tokenize_path() if not _VERSION.match(t)]
        return tokens[:1] or super().get_tags()

    def get_summary(self) -> str | None:
        action = getattr(self.view, "action", None)
        model = get_view_model(self.view, emit_warnings=False)
        if action in SUMMARIES and model is not None:
            meta = model._meta
            summary = SUMMARIES[action].format(singular=meta.verbose_name, plural=meta.verbose_name_plural)
            return re.sub(r"\ba (?=[AEIOUaeiou])", "an ", summary)
        return super().get_summary()

    def get_description(self) -> str:
        description = (super().get_description() or "").strip()
        audiences = [text for cls, text in AUDIENCES.items() if cls in self._permission_classes()]
        if audiences:
            description = f"{description}\n\n**Who:** {' '.join(audiences)}".strip()
        return description

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":
            for field in serializer.fields.values():
                prop = schema.get("properties", {}).get(field.field_name)
                if isinstance(prop, dict) and prop.get("type") == "string":
                    _constrain_text(field, prop)
                elif isinstance(prop, dict) and prop.get("type") == "array":
                    _constrain_list(field, prop)
        return schema

    def _permission_classes(self) -> list[type]:
        return [type(permission) for permission in self.view.get_permissions()]

    def _with_errors(self, operation: dict) -> dict:
        for name, schema in ERROR_SCHEMAS.items():
            self.registry.register_on_missing(ResolvedComponent(name, ResolvedComponent.SCHEMA, schema, name))
        classes = self._permission_classes()
        requires_auth = any(cls is not AllowAny for cls in classes)
        # Every class but IsAuthenticated refuses some role; an unsafe method from a session needs its CSRF token.
        may_forbid = self.method not in SAFE_METHODS or any(cls not in (AllowAny, IsAuthenticated) for cls in classes)
        # A view that takes any media type (the import reads the raw body) never answers 415.
        reads_any_type = any(parser.media_type == "*/*" for parser in self.view.get_parsers())
        errors = {"400": _error_object(400, "FieldErrors", "Error")}
        if requires_auth:
            errors["401"] = _error_object(401, "Error")
            errors["429"] = _error_object(429, "Error")
            errors["429"]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}
            }
        if requires_auth and may_forbid:
            errors["403"] = _error_object(403, "Error")
        if "{" in self.path or self._is_list_view():
            errors["404"] = _error_object(404, "Error")
        if "requestBody" in operation and not reads_any_type:
            errors["415"] = _error_object(415, "Error")
        responses = {**errors, **operation["responses"]}
        # The NUL refusal (middleware.py) answers any request, before a view runs, in plain text.
        responses["400"] = {
            **responses["400"],
            "content": {**responses["400"].get("content", {}), "text/plain": {"schema": {"type": "string"}}},
        }
        return dict(sorted(responses.items()))
