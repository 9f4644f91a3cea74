"""The compliance matrix is exported through the one CSV helper (inventory/exports.py): streamed, named by framework
and day, every cell neutralised like the other exports."""

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.models import Control
from tests.factories import TeamFactory, ToolFactory

pytestmark = pytest.mark.django_db


def test_the_matrix_goes_through_the_csv_helper(page_as, owner):
    team = TeamFactory(name="Formula team", slug="=cmd|'/c calc'!A0")
    ToolFactory(owner=owner, slug="@sum", name="=SUM(A1:A9)", team=team, environment="prod")
    ToolFactory(owner=owner, slug="plain", name="Plain tool", team=None, environment="dev")
    response = page_as("manager").get(reverse("inventory:compliance_export"), {"framework": "OWASP-NHI-2025"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    day = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="posture-OWASP-NHI-2025-{day}.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    controls = Control.objects.filter(framework__key="OWASP-NHI-2025", retired_at__isnull=True).order_by("order")
    # Names beside the ids: the tool's name after its slug, each control's title after its id.
    titled = [f"{c.control_id} {c.title}" for c in controls]
    assert rows[0] == ["tool", "tool name", "team", "environment", *titled]
    assert "NHI2 Secret Leakage" in rows[0]
    by_tool = {row[0]: row for row in rows[1:]}
    assert by_tool["'@sum"][:4] == ["'@sum", "'=SUM(A1:A9)", "'=cmd|'/c calc'!A0", "prod"]
    assert by_tool["plain"][:4] == ["plain", "Plain tool", "", "dev"]
    cells = {
        "pass",
        "fail",
        "attested",
        "not_assessed: no_subjects",
        "not_assessed: not_scanned",
        "not_assessed: unmapped",
    }
    assert set(by_tool["plain"][4:]) <= cells


def test_the_matrix_can_hold_the_assessed_controls_only(page_as, owner):
    from inventory.posture.evidence import evidence_map

    ToolFactory(owner=owner, slug="bare")
    response = page_as("manager").get(
        reverse("inventory:compliance_export"), {"framework": "NIST-SP-800-53r5", "assessed": "1"}
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    primary = evidence_map().primary
    assessed = [
        f"{c.control_id} {c.title}"
        for c in Control.objects.filter(framework__key="NIST-SP-800-53r5", retired_at__isnull=True).order_by("order")
        if primary.get(f"NIST-SP-800-53r5:{c.control_id}")
    ]
    assert 0 < len(assessed) < 100 and rows[0][4:] == assessed
    # No identity: every assessed control is not assessed for it, for want of anything to examine.
    assert set(rows[1][4:]) == {"not_assessed: no_subjects"}
