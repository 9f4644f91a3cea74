"""The database's resource match (LIKE on PostgreSQL, GLOB on SQLite) agrees with `resource_allowed`, including
for constraints and resources full of the characters either pattern language treats specially."""

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.authorization_store import resource_matches
from inventory.resources import canonical_resource, resource_allowed

pytestmark = pytest.mark.django_db

# The wildcard, LIKE's and GLOB's special characters, the escape, and ordinary resource text.
ALPHABET = "*%_\\[]?^-!/:.aAbé'"


def database_allows(constraint: str, resource: str) -> bool:
    """The match authorize's statement makes, over the resource as authorize binds it: canonical (a resource without
    a canonical form is refused as invalid_resource before any grant is matched)."""
    if resource:
        resource = canonical_resource(resource)
        if resource is None:
            return False
    with connection.cursor() as cursor:
        sql = f"SELECT CASE WHEN {resource_matches('%(constraint)s', connection.vendor)} THEN 1 ELSE 0 END"
        cursor.execute(sql, {"constraint": constraint, "resource": resource})
        return cursor.fetchone()[0] == 1


@pytest.mark.parametrize(
    ("constraint", "resource"),
    [
        ("", ""),
        ("", "anything"),
        ("project:payments/*", "project:payments/api/v2"),
        ("project:payments/*", "project:payments"),
        ("project:payments/*", ""),
        ("a%b", "aXb"),
        ("a_b", "aXb"),
        ("a?b", "aXb"),
        ("a[x]b", "axb"),
        ("a[x]b", "a[x]b"),
        ("a!b*", "a!bc"),
        ("a!%", "a!x"),
        ("a\\*", "a\\bc"),
        ("Space:*", "space:x"),
        ("*", ""),
    ],
)
def test_database_match_examples(constraint, resource):
    assert database_allows(constraint, resource) is resource_allowed(constraint, resource)


@settings(max_examples=300, deadline=None)
@given(constraint=st.text(ALPHABET, max_size=8), resource=st.text(ALPHABET, max_size=8))
def test_database_match_agrees_with_python(constraint, resource):
    assert database_allows(constraint, resource) is resource_allowed(constraint, resource)
