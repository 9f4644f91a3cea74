"""pytest fixtures around the provider: import them into a test module that signs in through it."""

import copy

import pytest

from . import OpenIDProvider


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory):
    provider = OpenIDProvider(live_server.url, tmp_path_factory.mktemp("oidc")).start()
    yield provider
    provider.stop()


@pytest.fixture
def sso(settings, oidc_provider):
    """The portal configured for the provider, as the OIDC_* environment variables would configure it."""
    for name, value in oidc_provider.portal_settings().items():
        setattr(settings, name, value)
    # What nhi_portal/settings/base.py derives from OIDC_RP_CLIENT_ID and OIDC_OP_LOGOUT_ENDPOINT at start-up.
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "operations.sso_backend.PortalOIDCBackend"]
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"].append(oidc_provider.issuer)
    settings.CONTENT_SECURITY_POLICY = policy
    return oidc_provider
