"""OpenAPI descriptions for the project's own serializer fields."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes


class NaturalKeyRelatedFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "inventory.api.fields.NaturalKeyRelatedField"

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        if direction == "response":
            schema = build_basic_type(OpenApiTypes.INT if field.output == "pk" else OpenApiTypes.STR)
        else:
            schema = {"oneOf": [build_basic_type(OpenApiTypes.INT), build_basic_type(OpenApiTypes.STR)]}
        schema["description"] = f"id or {field.natural_key}"
        return schema
