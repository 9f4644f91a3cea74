from django.contrib.auth import get_user_model
from rest_framework import serializers

from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team

from .fields import NaturalKeyRelatedField

User = get_user_model()


def _visible(queryset, user):
    return queryset.visible_to(user)


def _editable(queryset, user):
    return queryset.editable_by(user)


def _active_users(queryset, user):
    return queryset.filter(is_active=True)


def owner_field(**kwargs):
    return NaturalKeyRelatedField(
        queryset=User.objects.all(), natural_key="username", output="username", scoped=_active_users, **kwargs
    )


class ToolSerializer(serializers.ModelSerializer):
    owner = owner_field(required=False)
    team = NaturalKeyRelatedField(
        queryset=Team.objects.all(), natural_key="slug", output="slug", required=False, allow_null=True
    )
    identities = NaturalKeyRelatedField(
        queryset=ServiceIdentity.objects.all(), natural_key="name", scoped=_visible, many=True, required=False
    )
    allowed_users = owner_field(many=True, required=False)
    allowed_teams = NaturalKeyRelatedField(
        queryset=Team.objects.all(), natural_key="slug", output="slug", many=True, required=False
    )

    class Meta:
        model = AITool
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "vendor",
            "owner",
            "team",
            "environment",
            "data_classification",
            "status",
            "description",
            "enforces_authorization",
            "prompt_templates",
            "connector_config",
            "identities",
            "allowed_users",
            "allowed_teams",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class IdentitySerializer(serializers.ModelSerializer):
    owner = owner_field(required=False)
    tools = NaturalKeyRelatedField(
        queryset=AITool.objects.all(), natural_key="slug", scoped=_editable, many=True, required=False
    )

    class Meta:
        model = ServiceIdentity
        fields = [
            "id",
            "name",
            "kind",
            "provider",
            "external_id",
            "owner",
            "environment",
            "tools",
            "third_party",
            "status",
            "last_used_at",
            "interactive_use_seen",
            "last_reviewed_at",
            "created_at",
        ]
        read_only_fields = ["created_at"]


class CredentialSerializer(serializers.ModelSerializer):
    identity = NaturalKeyRelatedField(queryset=ServiceIdentity.objects.all(), natural_key="name", scoped=_editable)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="The secret itself. It is fingerprinted on arrival and never stored or returned.",
    )
    fingerprint = serializers.CharField(required=False, max_length=80)
    last4 = serializers.CharField(required=False, max_length=4, allow_blank=True)
    created_at = serializers.DateTimeField(required=False)

    class Meta:
        model = Credential
        fields = [
            "id",
            "identity",
            "kind",
            "secret",
            "fingerprint",
            "last4",
            "storage",
            "created_at",
            "last_rotated_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        # Uniqueness of (identity, fingerprint) is checked by the service after the secret is fingerprinted.
        validators = []

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            # A credential stays with its identity; a new secret is a rotation, not a new fingerprint by hand.
            for name in ("identity", "fingerprint", "last4"):
                fields[name].read_only = True
        return fields

    def validate(self, attrs):
        if self.instance is None and not attrs.get("secret") and not attrs.get("fingerprint"):
            message = "Give the secret (fingerprinted, then dropped) or its fingerprint."
            raise serializers.ValidationError({"secret": [message]})
        return attrs


class ScopeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Scope
        fields = ["id", "provider", "name", "risk", "sensitive", "description"]


class GrantSerializer(serializers.ModelSerializer):
    identity = serializers.PrimaryKeyRelatedField(read_only=True)
    identity_name = serializers.CharField(source="identity.name", read_only=True)
    scope = serializers.PrimaryKeyRelatedField(read_only=True)
    scope_name = serializers.CharField(source="scope.name", read_only=True)
    tool = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The tool the grant is limited to; null: any tool of the identity."
    )

    class Meta:
        model = ScopeGrant
        fields = [
            "id",
            "identity",
            "identity_name",
            "scope",
            "scope_name",
            "tool",
            "status",
            "resource_constraint",
            "granted_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoke_reason",
        ]
