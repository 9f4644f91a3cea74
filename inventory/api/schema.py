"""OpenAPI descriptions for the project's own serializer fields and validators."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes

from inventory.validators import refuse_control_characters
from nhi_portal.schema import VALIDATOR_PATTERNS


class NaturalKeyRelatedFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "inventory.api.fields.NaturalKeyRelatedField"

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        if direction == "response":
            schema = build_basic_type(OpenApiTypes.INT if field.output == "pk" else OpenApiTypes.STR)
        else:
            # Ids start at 1 and fit a bigint; a natural key is never empty.
            by_id = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
            schema = {"oneOf": [by_id, {"type": "string", "minLength": 1}]}
        schema["description"] = f"id or {field.natural_key}"
        return schema


# What `refuse_control_characters` refuses (C0, DEL, C1, U+2028, U+2029), as the pattern a client can check first.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
VALIDATOR_PATTERNS[refuse_control_characters] = NO_CONTROL_CHARACTERS
