import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from inventory import choices
from inventory.fingerprints import digest_secret
from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            # Tests skip migrations, so the role groups are created on demand.
            self.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in extracted))


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class ToolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AITool

    name = factory.Sequence(lambda n: f"Tool {n}")
    slug = factory.Sequence(lambda n: f"tool-{n}")
    kind = choices.ToolKind.ASSISTANT
    vendor = "Acme AI"
    owner = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    environment = choices.Environment.PROD
    data_classification = choices.DataClassification.INTERNAL


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceIdentity

    name = factory.Sequence(lambda n: f"svc-identity-{n}")
    kind = choices.IdentityKind.SERVICE_ACCOUNT
    provider = "github"
    owner = factory.SubFactory(UserFactory)
    environment = choices.Environment.PROD


class BindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ToolIdentity

    tool = factory.SubFactory(ToolFactory)
    identity = factory.SubFactory(IdentityFactory)


class CredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credential

    identity = factory.SubFactory(IdentityFactory)
    kind = choices.CredentialKind.API_KEY
    fingerprint = factory.Sequence(lambda n: digest_secret(f"factory-secret-{n:06d}").fingerprint)
    last4 = factory.Sequence(lambda n: f"{n:04d}"[-4:])
    storage = choices.CredentialStorage.VAULT
    created_at = factory.LazyFunction(timezone.now)


class ScopeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scope
        django_get_or_create = ("name",)

    provider = "github"
    name = factory.Sequence(lambda n: f"github:scope{n}:read")
    risk = choices.ScopeRisk.READ


class GrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScopeGrant

    identity = factory.SubFactory(IdentityFactory)
    scope = factory.SubFactory(ScopeFactory)
    granted_at = factory.LazyFunction(timezone.now)
    # As if issued by an approval that meets any policy; tests of unapproved grants set approvals=0.
    approvals = 2
