"""The review queue gives a reviewer what they weigh beside each request, in a constant number of queries."""

import pytest

from approvals import policy
from approvals.models import AccessRequest

pytestmark = pytest.mark.django_db


def test_review_queue_shows_requester_duration_rule_findings_and_grants(estate, page_as, users):
    estate(3)
    pending = AccessRequest.objects.filter(status="pending").select_related("tool").order_by("pk").first()
    body = page_as("security").get("/review/").content.decode()
    row = body[body.index(f'id="request-{pending.pk}"') :]
    row = row[: row.index("</tr>")]
    assert pending.tool.name in row and users["owner"].username in row
    assert "5 days" in row
    deciding = max((r for r in policy.RULES if r.key in pending.policy_rules), key=lambda r: r.required_approvals)
    assert deciding.description in row
    assert "1 open critical finding" in row  # the estate's critical finding on the tool's credential
    assert "active grant" in row and f"tool={pending.tool.slug}" in row


@pytest.mark.parametrize("rows", [2, 12])
def test_review_queue_queries_do_not_grow(estate, page_as, django_assert_max_num_queries, rows):
    estate(rows)
    client = page_as("security")
    with django_assert_max_num_queries(9):
        response = client.get("/review/")
    assert response.status_code == 200
