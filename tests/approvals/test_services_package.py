"""approvals.services is a package by sub-domain; callers keep `from approvals import services` and its names."""

import importlib
from pathlib import Path

import pytest

from approvals import services

PACKAGE = Path(services.__file__).parent
PUBLIC = {
    "requests": ["ScopeItem", "request_file", "request_renew", "request_decide", "request_cancel",
                 "request_may_decide", "request_may_cancel", "request_may_renew"],
    "grants": ["grant_may_revoke", "grant_revoke"],
    "jobs": ["grants_expire_due", "requests_expire_stale", "grants_remind_expiring", "JOB", "BATCH"],
    "policy_settings": ["policy_settings_update"],
}  # fmt: skip


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in PUBLIC.items() for n in names])
def test_every_public_name_is_the_sub_modules_own(module, name):
    assert getattr(services, name) is getattr(importlib.import_module(f"approvals.services.{module}"), name)
    assert name in services.__all__


def test_the_package_names_nothing_else():
    expected = {name for names in PUBLIC.values() for name in names}
    assert set(services.__all__) == expected | {"MIN_JUSTIFICATION_CHARS", "MIN_JUSTIFICATION_WORDS"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_each_module_stays_small(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400
