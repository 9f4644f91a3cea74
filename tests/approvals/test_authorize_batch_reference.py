"""Property: a tool listing's answers (`authorization_store.answer_questions`, the statement behind POST
/authorize/batch/) are the reference's (`decide_reference`), for a resource and for `any_resource`, in every generated
world; they record nothing. Reuses the worlds, questions and faults of test_authorize_reference."""

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.authorization_reference import Question, World, decide_reference
from approvals.authorization_store import answer_questions
from inventory.models import AccessEvent
from tests.approvals.test_authorize_reference import (
    NOW,
    _build,
    _question,
    _with_faults,
    faults,
    questions,
    skeleton,  # noqa: F401 (a fixture)
    worlds,
)


def _answers_as_reference(skeleton, world, asked, any_resource):  # noqa: F811
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        _build(skeleton, world, asked)
        q = _question(skeleton, {**asked, "credential": ""})
        resource = "" if any_resource else q.resource
        question = Question(q.tool, q.identity, q.user, q.scope, resource=resource, token=q.token,
                            any_resource=any_resource)  # fmt: skip
        expected = decide_reference(World.from_database(NOW), question)
        from inventory.resources import canonical_resource

        canonical = canonical_resource(resource) if resource else ""
        [(reason, grant, *_)] = answer_questions(
            tool=q.tool, identity=q.identity, user=q.user, token_id=q.token, now=timezone.now(),
            questions=[(q.scope, resource if canonical is None else canonical, canonical is not None, any_resource)],
        )  # fmt: skip
        assert (reason, grant if reason == "allowed" else None) == (expected.reason, expected.grant), question
        assert not AccessEvent.objects.exists()
        transaction.set_rollback(True)


pytestmark = pytest.mark.django_db


def test_listing_answers_are_the_references(skeleton):  # noqa: F811
    @settings(max_examples=150, deadline=None)
    @given(world=worlds, asked=questions, broken=faults, any_resource=st.booleans())
    def answers_as_reference(world, asked, broken, any_resource):
        _answers_as_reference(skeleton, *_with_faults(world, asked, broken), any_resource)

    answers_as_reference()
