"""The training run's status for any number of listeners (``/api/train/events``), at the cost of one.

A listener is an async generator on the server's event loop, not a worker thread: fifty open pages cost fifty small
objects, and the server's threads stay free for the views. The status (which reads the run's files and may ask a
new checkpoint the probe questions) is asked in a worker thread at most once per ``PERIOD_S``, however many
listen, and every listener gets that one answer. A stream ends when the run does, when its client goes away (the
server cancels it then), or when the server shuts down (``close``).
"""
import asyncio

import anyio

PERIOD_S = 0.5


class StatusFeed:
    def __init__(self, status, period_s: float = PERIOD_S):
        self.status, self.period_s = status, period_s
        self.latest: dict | None = None
        self.asked_at = -float("inf")
        self.asking: asyncio.Lock | None = None        # made on the event loop, at the first listener
        self.closed = False

    async def current(self) -> dict:
        """The status, asked again only when the last answer is older than ``period_s``."""
        if self.asking is None:
            self.asking = asyncio.Lock()
        async with self.asking:
            now = asyncio.get_running_loop().time()
            if now - self.asked_at >= self.period_s:
                self.latest = await anyio.to_thread.run_sync(self.status)
                self.asked_at = asyncio.get_running_loop().time()
            return self.latest

    async def follow(self):
        """Each new status, until the run is no longer training or the server closes."""
        last = None
        while not self.closed:
            status = await self.current()
            if status != last:
                yield status
                last = status
            if status["state"] != "training":
                return
            await asyncio.sleep(self.period_s)

    def changed(self) -> None:
        """A run was just started or resumed: the next listener asks the status again (a status kept from before,
        "stopped", would end its stream at once)."""
        self.asked_at = -float("inf")

    def close(self) -> None:
        """The server is shutting down: every stream ends at its next look (within ``period_s``)."""
        self.closed = True
