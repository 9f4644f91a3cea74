"""One pager (`templates/_partials/pager.html`) for every paged page: it keeps the URL's other parameters, swaps the
results in place where the page has them, and is a plain link everywhere else."""

import html
import re

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from approvals.models import AccessRequest
from inventory.models import AuditEntry, Control, Finding
from inventory.paging import paged
from tests.factories import BindingFactory, GrantFactory, IdentityFactory, ScopeFactory, ToolFactory

pytestmark = pytest.mark.django_db


def _tools(owner, n):
    return [ToolFactory(owner=owner, environment="dev") for _ in range(n)]


def _identities(owner, n):
    return [IdentityFactory(owner=owner, provider="aws") for _ in range(n)]


def _grants(owner, n):
    identity = IdentityFactory(owner=owner, name="svc-paged")
    return [GrantFactory(identity=identity, scope=ScopeFactory()) for _ in range(n)]


def _requests(owner, n):
    tool = ToolFactory(owner=owner)
    identity = IdentityFactory(owner=owner)
    BindingFactory(tool=tool, identity=identity)
    return AccessRequest.objects.bulk_create(
        AccessRequest(requester=owner, tool=tool, identity=identity, justification="x", duration_days=7,
                      required_approvals=1)
        for _ in range(n)
    )  # fmt: skip


def _findings(owner, n):
    tool = ToolFactory(owner=owner)
    now = timezone.now()
    return Finding.objects.bulk_create(
        Finding(detector="secret_exposed", subject_type="credential", subject_id=i, tool=tool, severity="high",
                first_seen_at=now, recorded_last_seen_at=now)
        for i in range(1, n + 1)
    )  # fmt: skip


def _entries(owner, n):
    return AuditEntry.objects.bulk_create(
        AuditEntry(actor=owner, actor_label="owner", action="tool.updated", object_type="inventory.aitool",
                   object_id=str(i), object_repr=f"tool {i}")
        for i in range(n)
    )  # fmt: skip


def _nhi2():
    return reverse("inventory:control_detail", args=[Control.objects.get(control_id="NHI2").pk])


# (page, who reads it, how many rows make two pages, their maker, a filter the pager keeps, swapped in place)
PAGES = [
    ("inventory:tool_list", "owner", 26, _tools, "environment=dev", True),
    ("inventory:identity_list", "owner", 26, _identities, "provider=aws", True),
    ("inventory:finding_list", "security", 51, _findings, "severity=high", True),
    # The audit pages page by id instead (issue 17, inventory/audit/keyset.py): tests/inventory/audit/.
    ("approvals:grant_list", "owner", 51, _grants, "identity=svc-paged", True),
    ("approvals:request_list", "owner", 26, _requests, "status=pending", True),
    ("approvals:review_queue", "security", 51, _requests, "", False),
    (_nhi2, "security", 51, _findings, "", False),
]


def _pager(body: str) -> str:
    pager = re.search(r'<nav class="pager".*?</nav>', body, re.S)
    assert pager, "no pager"
    return pager.group(0)


@pytest.mark.parametrize(
    ("name", "role", "rows", "make", "query", "swaps"), PAGES, ids=lambda p: getattr(p, "__name__", p)
)
def test_every_paged_page_uses_the_one_pager(page_as, owner, name, role, rows, make, query, swaps):
    make(owner, rows)
    url = name() if callable(name) else reverse(name)
    client = page_as(role)
    first = client.get(f"{url}?{query}")
    assert "_partials/pager.html" in [t.name for t in first.templates]
    pager = html.unescape(_pager(first.content.decode()))
    assert "Page 1 of 2" in pager
    expected = f"?{query}&page=2" if query else "?page=2"
    assert f'href="{expected}"' in pager
    assert (f'hx-get="{expected}"' in pager) is swaps
    assert ('hx-target="#results"' in pager) is swaps
    second = html.unescape(_pager(client.get(f"{url}{expected}").content.decode()))
    assert "Page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second


def test_one_page_has_no_pager(page_as, owner):
    _tools(owner, 3)
    assert '<nav class="pager"' not in page_as("owner").get(reverse("inventory:tool_list")).content.decode()


def test_audit_changes_read_newer_and_older(page_as, owner):
    entries = _entries(owner, 120)
    middle = entries[-1].pk - 49  # the second page, by keyset (issue 17)
    pager = _pager(page_as("security").get(reverse("inventory:audit_changes"), {"before": middle}).content.decode())
    assert "← Newer" in pager and "Older →" in pager and "Previous" not in pager


def test_paged_keeps_every_parameter_but_the_page():
    request = RequestFactory().get("/tools/", {"search": "a&b", "ordering": "-name", "page": "3", "page_size": "50"})
    context = paged(request, list(range(200)), per_page=50)
    assert context["page"].number == 3
    assert context["query"] == "search=a%26b&ordering=-name&page_size=50"


def test_the_pager_alone():
    page = Paginator(list(range(30)), 10).get_page(2)
    plain = render_to_string("_partials/pager.html", {"page": page, "query": "a=1"})
    assert 'href="?a=1&page=1"' in plain and 'href="?a=1&page=3"' in plain and "hx-get" not in plain
    swapped = render_to_string(
        "_partials/pager.html", {"page": page, "query": "", "target": "#results", "sync": "#filters:replace"}
    )
    assert 'hx-get="?page=3"' in swapped and 'hx-sync="#filters:replace"' in swapped
