import pytest

from tests.factories import BindingFactory, CredentialFactory, GrantFactory, IdentityFactory, ToolFactory


@pytest.fixture
def estate(owner, other_owner):
    """One tool, identity, credential and grant owned by `owner`, and a tool of `other_owner`."""
    tool = ToolFactory(owner=owner, slug="owners-tool", name="Owner's tool")
    identity = IdentityFactory(owner=owner, name="owners-identity")
    BindingFactory(tool=tool, identity=identity)
    credential = CredentialFactory(identity=identity)
    grant = GrantFactory(identity=identity, tool=tool)
    others_tool = ToolFactory(owner=other_owner, slug="others-tool", name="Other's tool")
    return {
        "tool": tool,
        "identity": identity,
        "credential": credential,
        "grant": grant,
        "others_tool": others_tool,
    }
