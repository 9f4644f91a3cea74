"""Annotations shared by detectors: what a row is, and which tool and identity a finding on it belongs to."""

from django.db.models import BigIntegerField, F, QuerySet, Value
from django.db.models.fields import CharField
from django.db.models.functions import Cast

# A typed NULL: PostgreSQL would otherwise guess text for a bare NULL inside the scan's UNION and GROUP BY.
_NO_ID = Cast(Value(None), output_field=BigIntegerField())


def subjects(queryset: QuerySet, subject: str, *, identity: str | None, tool=None) -> QuerySet:
    """Shape a detector's queryset into the columns the scan reads: s_type, s_id, s_tool, s_identity.

    Without a tool, s_tool is NULL and the scan shows the finding under the lowest-id tool the identity is bound
    to (inventory.detection.apply): one join over the subjects, rather than a lookup per row of the estate."""
    if isinstance(tool, str):
        tool_expr = F(tool)
    elif tool is not None:
        tool_expr = tool
    else:
        tool_expr = _NO_ID
    identity_expr = F(identity) if identity else _NO_ID
    # No ORDER BY: the scan groups the rows, so the model's default ordering would only add a sort of every row.
    return (
        queryset.order_by()
        .annotate(
            s_type=Value(subject, output_field=CharField()),
            s_id=F("pk"),
            s_tool=tool_expr,
            s_identity=identity_expr,
        )
        .values("s_type", "s_id", "s_tool", "s_identity")
    )
