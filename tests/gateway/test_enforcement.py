"""The MCP gateway with real processes: the sample upstream (SDK server), the portal under a live server, the
gateway (`nhi-mcp-gateway`), and the SDK's MCP client. Nothing is mocked."""

import sys
import time

import pytest
from django.utils import timezone
from mcp.shared.exceptions import MCPError

from approvals import services
from inventory.models import AccessEvent
from tests.gateway.processes import calls, free_port, run_client

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = {"X-Forwarded-User": "alice"}


async def _call(client, name, **arguments):
    try:
        result = await client.call_tool(name, arguments)
        return {"ok": not result.is_error, "text": result.content[0].text}
    except MCPError as error:
        return {"error": error.message, "data": error.data, "code": error.code}


def call(url, name, headers=ALICE, **arguments):
    return run_client(url, headers, lambda client: _call(client, name, **arguments))


def listed(url, headers=ALICE):
    async def steps(client):
        return sorted(tool.name for tool in (await client.list_tools()).tools)

    return run_client(url, headers, steps)


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_an_allowed_call_reaches_the_upstream_and_its_usage_links_to_the_decision(gateway_for, sample, estate):
    url = gateway_for()
    before = calls(sample).get("search_docs", 0)
    answer = call(url, "search_docs", space="ENG", query="deploy")
    assert answer == {"ok": True, "text": "deploys"}
    assert calls(sample).get("search_docs", 0) == before + 1
    decision = AccessEvent.objects.get(kind="decision")
    assert (decision.decision, decision.reason, decision.action) == ("allow", "allowed", "search_docs")
    assert decision.on_behalf_of == estate["alice"] and decision.resource == "space:ENG"
    assert decision.request_id.startswith("mcp:")
    assert _wait_for(lambda: AccessEvent.objects.filter(kind="observed").exists())
    used = AccessEvent.objects.get(kind="observed")
    assert used.decision_event_id == decision.pk and used.outcome == "ok" and used.duration_ms is not None
    assert (used.tool, used.identity, used.scope) == (estate["tool"], estate["identity"], estate["scope"])


def test_usage_is_reported_in_batches_and_what_is_queued_is_sent_when_the_gateway_stops(gateway_for, sample, estate):
    url = gateway_for(flush_ms=60_000)  # nothing is due for a minute: only the stop sends it
    for _ in range(3):
        assert call(url, "search_docs", space="ENG", query="deploy")["ok"]
    time.sleep(0.5)
    assert not AccessEvent.objects.filter(kind="observed").exists()
    gateway_for.started[-1].stop()  # SIGTERM, as a service manager stops it
    used = AccessEvent.objects.filter(kind="observed")
    decisions = set(AccessEvent.objects.filter(kind="decision", decision="allow").values_list("pk", flat=True))
    assert used.count() == 3 and set(used.values_list("decision_event_id", flat=True)) == decisions


def test_a_denied_call_never_reaches_the_upstream(gateway_for, sample):
    url = gateway_for()
    before = calls(sample)
    answer = call(url, "search_docs", space="HR", query="salaries")
    assert answer["error"].startswith("denied: resource_outside_grant")
    event = AccessEvent.objects.get(kind="decision")
    assert answer["data"] == {"decision": "deny", "reason": "resource_outside_grant", "event_id": event.pk}
    assert event.resource == "space:HR" and event.decision == "deny"
    assert calls(sample) == before


def test_an_argument_cannot_widen_the_resource(gateway_for, sample):
    url = gateway_for()
    before = calls(sample)
    # A value the portal would rewrite before deciding (a traversal, percent-encoding, a compatibility form) is
    # refused before asking, so the resource decided on is the one acted on; a "*" is literal text, never a wildcard.
    spaces = ("ENG/../HR", "%45NG", "E%4eG", "\uff25\uff2e\uff27", "ENG*", "*")
    reasons = [call(url, "read_page", space=s, page="salaries")["data"]["reason"] for s in spaces]
    assert reasons == ["resource_not_canonical"] * 4 + ["resource_outside_grant"] * 2
    assert calls(sample) == before


def test_unmapped_tools_and_calls_without_a_human_are_denied(gateway_for, sample):
    url = gateway_for()
    before = calls(sample)
    assert call(url, "delete_space", space="ENG")["error"].startswith("denied: tool_not_mapped")
    assert call(url, "search_docs", headers={}, space="ENG", query="x")["error"].startswith("denied: no_human")
    assert (
        call(url, "search_docs", headers={"X-Forwarded-User": "mallory"}, space="ENG", query="x")["data"]["reason"]
        == "unknown_user"
    )
    assert calls(sample) == before


def test_revoking_the_grant_denies_the_very_next_call_and_hides_the_tools(gateway_for, sample, estate, security):
    url = gateway_for()
    assert listed(url) == ["read_page", "search_docs"]
    assert call(url, "search_docs", space="ENG", query="deploy")["ok"]
    services.grant_revoke(actor=security, grant_id=estate["grant"].pk, reason="Contained during an incident review.")
    before = calls(sample)
    assert call(url, "search_docs", space="ENG", query="deploy")["data"]["reason"] == "grant_revoked"
    assert calls(sample) == before
    assert listed(url) == []
    listing = AccessEvent.objects.filter(kind="list").order_by("pk").last()
    assert listing.decision == "deny" and listing.action == "tools/list"


def test_tools_list_shows_only_what_this_human_may_call(gateway_for, estate):
    url = gateway_for()
    assert listed(url) == ["read_page", "search_docs"]
    assert listed(url, {"X-Forwarded-User": "owner2"}) == []  # not a member of the team the tool serves


def test_with_the_portal_down_or_slow_every_call_is_denied_and_nothing_is_listed(gateway_for, sample):
    import socket

    dead = f"http://127.0.0.1:{free_port()}"
    before = calls(sample)
    url = gateway_for(portal=dead)
    answer = call(url, "search_docs", space="ENG", query="deploy")
    assert answer["error"].startswith("denied: portal_unavailable") and answer["data"]["event_id"] is None
    assert listed(url) == []
    # A portal that accepts the connection and never answers: denied after the configured timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = gateway_for(portal=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_ms=300)
        started = time.monotonic()
        assert call(url, "search_docs", space="ENG", query="deploy")["data"]["reason"] == "portal_unavailable"
        assert time.monotonic() - started < 5
    assert calls(sample) == before


def test_a_stdio_upstream_is_enforced_the_same_way(gateway_for, estate):
    command = f'command = ["{sys.executable}", "-m", "gateway.sample_server", "--stdio"]'
    url = gateway_for(upstream=command)
    assert call(url, "search_docs", space="ENG", query="oncall") == {"ok": True, "text": "oncall"}
    assert call(url, "search_docs", space="HR", query="x")["data"]["reason"] == "resource_outside_grant"
    assert AccessEvent.objects.filter(kind="decision", decision="allow").count() == 1


def test_the_tool_is_no_longer_unmediated_once_its_calls_come_through_the_gateway(gateway_for, estate):
    from inventory.detection.detectors import tool_unmediated
    from inventory.detection.registry import Context, thresholds

    estate["tool"].enforces_authorization = False
    estate["tool"].save()

    def flagged():
        context = Context(now=timezone.now(), thresholds=thresholds())
        return [row["s_id"] for qs in tool_unmediated.DETECTOR.querysets(context) for row in qs.values("s_id")]

    assert estate["tool"].pk in flagged()
    call(gateway_for(), "search_docs", space="ENG", query="deploy")
    assert estate["tool"].pk not in flagged()
