from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.models import AccessRequest, Decision, RequestedScope
from approvals.services import MIN_JUSTIFICATION_CHARS, MIN_JUSTIFICATION_WORDS
from inventory.api.fields import NaturalKeyRelatedField
from inventory.api.serializers import GrantSerializer as InventoryGrantSerializer
from inventory.models import AITool, Scope, ServiceIdentity


class RequestedScopeSerializer(serializers.ModelSerializer):
    scope = serializers.CharField(source="scope.name", read_only=True)
    risk = serializers.CharField(source="scope.risk", read_only=True)
    sensitive = serializers.BooleanField(source="scope.sensitive", read_only=True)

    class Meta:
        model = RequestedScope
        fields = ["scope", "risk", "sensitive", "resource_constraint"]


class DecisionSerializer(serializers.ModelSerializer):
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Decision
        fields = ["id", "approver", "kind", "comment", "policy_rule", "created_at"]


# The service's rule (`_check_justification`) as a pattern: trimmed, at least MIN_JUSTIFICATION_CHARS characters and
# MIN_JUSTIFICATION_WORDS words.
JUSTIFICATION_PATTERN = (
    rf"^\s*(?=\S[\s\S]{{{MIN_JUSTIFICATION_CHARS - 2},}}\S\s*$)\S+(?:\s+\S+){{{MIN_JUSTIFICATION_WORDS - 1},}}\s*$"
)


@extend_schema_field(
    {
        "type": "string",
        "pattern": JUSTIFICATION_PATTERN,
        "description": f"At least {MIN_JUSTIFICATION_CHARS} characters and {MIN_JUSTIFICATION_WORDS} words, trimmed.",
    }
)
class JustificationField(serializers.CharField):
    """Why the tool needs the scopes: a sentence, checked by the service; the schema states the same rule."""


class ScopeItemInput(serializers.Serializer):
    scope = NaturalKeyRelatedField(queryset=Scope.objects.all(), natural_key="name")
    resource_constraint = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1, "description": "scope name"},
            {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "description": "scope id"},
            {
                "type": "object",
                "properties": {
                    "scope": {
                        "oneOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}],
                        "description": "scope name or id",
                    },
                    "resource_constraint": {
                        "type": "string",
                        "maxLength": 255,
                        "description": "A resource pattern in canonical form, e.g. project:payments/*.",
                    },
                },
                "required": ["scope"],
            },
        ]
    }
)
class ScopeInputField(serializers.Field):
    """A scope name or id, or an object with `scope` and `resource_constraint`."""

    def to_internal_value(self, data):
        item = ScopeItemInput(data=data if isinstance(data, dict) else {"scope": data}, context=self.context)
        item.is_valid(raise_exception=True)
        return item.validated_data

    def to_representation(self, value):  # pragma: no cover - write-only
        return value


def _editable(queryset, user):
    return queryset.editable_by(user).exclude(status="retired")


def _visible(queryset, user):
    return queryset.visible_to(user)


class AccessRequestSerializer(serializers.ModelSerializer):
    tool = NaturalKeyRelatedField(queryset=AITool.objects.all(), natural_key="slug", scoped=_editable)
    identity = NaturalKeyRelatedField(queryset=ServiceIdentity.objects.all(), natural_key="name", scoped=_visible)
    scopes = serializers.ListField(
        child=ScopeInputField(),
        write_only=True,
        allow_empty=False,
        max_length=50,
        help_text="Scopes of the identity's provider only (a 400 on `scopes` otherwise); each scope (and resource) "
        "once, none already held or pending for the identity.",
    )
    justification = JustificationField(help_text="Why the tool needs these scopes, in at least a sentence.")
    items = RequestedScopeSerializer(many=True, read_only=True)
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approvals = serializers.IntegerField(source="approval_count", read_only=True, default=0)
    decisions = DecisionSerializer(many=True, read_only=True)
    duration_days = serializers.IntegerField(
        min_value=1, max_value=365, help_text="At most what the policy allows for the riskiest scope asked for."
    )

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "status",
            "requester",
            "tool",
            "identity",
            "scopes",
            "items",
            "justification",
            "duration_days",
            "required_approvals",
            "approvals",
            "policy_rules",
            "decisions",
            "renewal_of",
            "created_at",
            "decided_at",
        ]
        read_only_fields = ["status", "required_approvals", "policy_rules", "renewal_of", "created_at", "decided_at"]


class DecisionInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class RevokeInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)


class GrantSerializer(InventoryGrantSerializer):
    request = serializers.SerializerMethodField(help_text="The request whose approval issued this grant.")

    class Meta(InventoryGrantSerializer.Meta):
        fields = [*InventoryGrantSerializer.Meta.fields, "request"]

    def get_request(self, grant) -> int | None:
        issue = getattr(grant, "issue", None)
        return issue.request_id if issue else None
