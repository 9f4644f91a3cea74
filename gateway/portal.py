"""The portal, over its HTTP API only: ask before a call, ask for a listing, report what ran.

Fail closed: unreachable, slower than the configured timeout, a 5xx or any answer that is not the documented JSON
is `portal_unavailable`, which denies. Nothing is cached: every call is asked about afresh, so a revocation in the
portal binds the very next call.
"""

import json
import logging
import time
from datetime import UTC, datetime

import anyio

from .config import Portal
from .http11 import Http11, ProtocolError

UNAVAILABLE = "portal_unavailable"
log = logging.getLogger("nhi_gateway")


class PortalUnavailable(Exception):
    pass


class PortalClient:
    """The portal's API for one gateway process. Questions (authorize, listing) are asked on the caller's request,
    each afresh; usage reports are queued and sent in batches by `run_reporter`, off the call path."""

    def __init__(self, portal: Portal, *, flush_seconds: float = 1.0, max_batch: int = 500, max_buffer: int = 50_000):
        self.portal = portal
        self.http = Http11(portal.url, {"Authorization": f"Token {portal.token}", "Accept": "application/json"})
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self._usage: list[dict] = []
        self._usage_ready = anyio.Event()

    async def aclose(self) -> None:
        """At shutdown (SIGTERM, SIGINT): what is still queued is sent before the process ends."""
        await self.flush()
        if self._usage:
            log.error("shutting down with %d usage events unreported (the portal did not take them)", len(self._usage))
        await self.http.aclose()

    async def _send(self, path: str, body):
        """POST `body` as JSON within the portal timeout; PortalUnavailable when no answer came in time."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        try:
            with anyio.fail_after(self.portal.timeout):
                return await self.http.post(path, payload)
        except (ProtocolError, TimeoutError, OSError) as error:
            raise PortalUnavailable(type(error).__name__) from error

    async def _post(self, path: str, body) -> dict:
        response = await self._send(path, body)
        if response.status != 200:
            raise PortalUnavailable(f"HTTP {response.status}")
        try:
            answer = json.loads(response.body)
        except ValueError as error:
            raise PortalUnavailable("not JSON") from error
        if not isinstance(answer, dict):
            raise PortalUnavailable("not a JSON object")
        return answer

    async def authorize(self, question: dict) -> dict:
        answer = await self._post("/api/v1/authorize/", question)
        if answer.get("decision") not in ("allow", "deny") or not isinstance(answer.get("reason"), str):
            raise PortalUnavailable("an answer without a decision")
        # An allow is an allow the portal recorded: without the event it names (a proxy or cache in between, a
        # forged answer), nothing is forwarded.
        event_id = answer.get("event_id")
        if answer["decision"] == "allow" and (type(event_id) is not int or event_id <= 0):
            raise PortalUnavailable("an allow without its recorded event")
        return answer

    async def listing(self, question: dict) -> dict:
        answer = await self._post("/api/v1/authorize/batch/", question)
        if not isinstance(answer.get("answers"), list):
            raise PortalUnavailable("a listing without answers")
        return answer

    # Usage is reported after the call, batched in the background: the client's answer never waits for it, and the
    # portal stores a batch for a fraction of what the same events cost one small POST at a time (measured: 0.7 ms
    # of portal CPU per event in batches of 15, 0.1 ms in batches of 500), CPU it would otherwise take from
    # answering /authorize/. The queue lives in memory: events not yet sent when the process is killed outright
    # (SIGKILL, a crash, the host lost) are lost, at most flush_ms of calls, or the whole queue while the portal
    # is unreachable; their decisions stay recorded. A normal stop sends them first (`aclose`).

    def report(self, event: dict) -> None:
        event.setdefault("occurred_at", datetime.now(UTC).isoformat())
        if len(self._usage) >= self.max_buffer:
            # The portal has been refusing or unreachable for long: memory is bounded, and the loss is said.
            dropped = self._usage[: self.max_batch]
            self._usage = self._usage[self.max_batch :]
            log.error("usage buffer full: %d usage events dropped unreported (first %s)", len(dropped),
                      dropped[0]["event_id"])  # fmt: skip
        self._usage.append(event)
        if len(self._usage) >= self.max_batch:
            self._usage_ready.set()

    async def run_reporter(self) -> None:
        while True:
            with anyio.move_on_after(self.flush_seconds):
                await self._usage_ready.wait()
            self._usage_ready = anyio.Event()
            if not await self.flush():
                await anyio.sleep(self.flush_seconds)  # the portal is away: no retry on every new call meanwhile

    async def flush(self) -> bool:
        """Send what is queued now, in batches of at most max_batch; False when the portal did not take it (it stays
        queued). Events queued while this runs wait for the next flush: sending them at once would turn a steady
        stream of calls into one small POST per call (measured: one 1-event POST after another, each costing the
        portal as much CPU as an authorize, which then waited behind them)."""
        due = len(self._usage)
        while due > 0 and self._usage:
            size = min(due, self.max_batch)
            batch, self._usage = self._usage[:size], self._usage[size:]
            started = time.monotonic()
            try:
                response = await self._send("/api/v1/events/", {"events": batch})
            except BaseException as error:
                # Kept for the next flush (or the one at shutdown, if this one was cancelled by it): usage is evidence,
                # worth a retry, and event ids make a repeat harmless.
                self._usage = batch + self._usage
                if not isinstance(error, PortalUnavailable):
                    raise
                log.warning("usage report failed (%s); %d events kept for retry", error, len(self._usage))
                return False
            if response.status >= 500:
                log.warning("usage report failed (HTTP %s); kept for retry", response.status)
                self._usage = batch + self._usage
                return False
            if response.status == 400 and (bad := _bad_rows(response, len(batch))):
                # All or nothing at the portal: the rows it named are dropped (and said so), the rest sent again.
                for index in sorted(bad, reverse=True):
                    log.error("usage event %s refused: %s", batch[index]["event_id"], bad[index])
                    del batch[index]
                self._usage = batch + self._usage
                due -= len(bad)
                continue
            due -= len(batch)
            if response.status >= 400:
                # A 4xx will not get better by retrying: the batch is dropped, and said so.
                text = response.body[:500].decode("utf-8", "replace")
                log.error("usage report refused (HTTP %s, %d events dropped): %s", response.status, len(batch), text)
            log.debug("reported %d usage events in %.1f ms", len(batch), (time.monotonic() - started) * 1000)
        return True


def _bad_rows(response, size: int) -> dict[int, str]:
    try:
        errors = json.loads(response.body).get("errors", [])
    except (ValueError, AttributeError):
        return {}
    rows = {}
    for error in errors if isinstance(errors, list) else []:
        row = error.get("row") if isinstance(error, dict) else None
        if isinstance(row, int) and 0 <= row < size:
            rows[row] = f"{error.get('field')}: {error.get('message')}"
    return rows
