"""Grants issued before grants recorded their approval: count the approvals of the request that issued them.

Grants without a request (seeded or imported) keep zero approvals: nobody approved them, so they do not authorize.
"""

from django.db import migrations
from django.db.models import Count, Exists, OuterRef, Q


def backfill(apps, schema_editor):
    GrantIssue = apps.get_model("approvals", "GrantIssue")
    Decision = apps.get_model("approvals", "Decision")
    ScopeGrant = apps.get_model("inventory", "ScopeGrant")
    issues = GrantIssue.objects.annotate(
        people=Count("request__decisions", filter=Q(request__decisions__kind="approve", request__decisions__approver__isnull=False)),
        by_policy=Exists(Decision.objects.filter(request=OuterRef("request"), kind="approve").exclude(policy_rule="")),
    )
    for issue in issues.iterator():
        ScopeGrant.objects.filter(pk=issue.grant_id).update(approvals=issue.people, approved_by_policy=issue.by_policy)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0003_grant_issue_approved_until"),
        ("inventory", "0015_grant_approvals_fact_changes_revocation_final"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
