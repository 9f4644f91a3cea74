"""The browser journey here drives the Sources page with the e2e suite's own fixtures (system Chromium, live server,
sign-in through the real form), imported rather than copied."""

from tests.e2e.conftest import browser, context, make_user, page, sign_in  # noqa: F401
