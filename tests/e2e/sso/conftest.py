from tests.oidc_provider.fixtures import oidc_provider, sso  # noqa: F401  (the real OpenID Provider, and the portal set up for it)
