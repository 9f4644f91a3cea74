"""The portal, over its HTTP API only: ask before a call, ask for a listing, report what ran.

Fail closed: unreachable, slower than the configured timeout, a 5xx or any answer that is not the documented JSON
is `portal_unavailable`, which denies. Nothing is cached: every call is asked about afresh, so a revocation in the
portal binds the very next call.
"""

import logging
import time
from datetime import UTC, datetime

import anyio
import httpx2

from .config import Portal

UNAVAILABLE = "portal_unavailable"
log = logging.getLogger("nhi_gateway")


class PortalUnavailable(Exception):
    pass


class PortalClient:
    def __init__(self, portal: Portal, *, flush_seconds: float = 0.2, max_batch: int = 500, max_buffer: int = 50_000):
        self.portal = portal
        self.http = httpx2.AsyncClient(
            base_url=portal.url,
            headers={"Authorization": f"Token {portal.token}", "Accept": "application/json"},
            timeout=httpx2.Timeout(portal.timeout),
            limits=httpx2.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self._usage: list[dict] = []
        self._usage_ready = anyio.Event()

    async def aclose(self) -> None:
        await self.flush()
        await self.http.aclose()

    async def _post(self, path: str, body) -> dict:
        try:
            with anyio.fail_after(self.portal.timeout):
                response = await self.http.post(path, json=body)
        except (httpx2.HTTPError, TimeoutError, OSError) as error:
            raise PortalUnavailable(type(error).__name__) from error
        if response.status_code != 200:
            raise PortalUnavailable(f"HTTP {response.status_code}")
        try:
            answer = response.json()
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

    # Usage is reported after the call, batched in the background: the client's answer never waits for it.

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
            await self.flush()

    async def flush(self) -> None:
        while self._usage:
            batch, self._usage = self._usage[: self.max_batch], self._usage[self.max_batch :]
            started = time.monotonic()
            try:
                response = await self.http.post("/api/v1/events/", json={"events": batch})
            except httpx2.HTTPError as error:
                # Kept for the next flush: usage is evidence, worth a retry; event ids make a repeat harmless.
                log.warning("usage report failed (%s); %d events kept for retry", type(error).__name__, len(batch))
                self._usage = batch + self._usage
                return
            if response.status_code >= 500:
                log.warning("usage report failed (HTTP %s); kept for retry", response.status_code)
                self._usage = batch + self._usage
                return
            if response.status_code == 400 and (bad := _bad_rows(response, len(batch))):
                # All or nothing at the portal: the rows it named are dropped (and said so), the rest sent again.
                for index in sorted(bad, reverse=True):
                    log.error("usage event %s refused: %s", batch[index]["event_id"], bad[index])
                    del batch[index]
                self._usage = batch + self._usage
                continue
            if response.status_code >= 400:
                # A 4xx will not get better by retrying: the batch is dropped, and said so.
                log.error("usage report refused (HTTP %s): %s", response.status_code, response.text[:500])
            log.debug("reported %d usage events in %.1f ms", len(batch), (time.monotonic() - started) * 1000)


def _bad_rows(response, size: int) -> dict[int, str]:
    try:
        errors = response.json().get("errors", [])
    except (ValueError, AttributeError):
        return {}
    rows = {}
    for error in errors if isinstance(errors, list) else []:
        row = error.get("row") if isinstance(error, dict) else None
        if isinstance(row, int) and 0 <= row < size:
            rows[row] = f"{error.get('field')}: {error.get('message')}"
    return rows
