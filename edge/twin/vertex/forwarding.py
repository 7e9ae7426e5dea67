"""Predict calls on their way from the Vertex API to a model server: a pooled client, and coalescing.

Under load, the HTTP round trip to the model server costs about as much as the model: so
bodies that arrive while SOLO_FORWARDS requests are already on their way to a server wait,
and leave together as one request (their instances concatenated), whose predictions are
split back. A combined request that fails, or whose answer does not split, is sent again
body by body, so that every caller gets exactly the answer (or error) it would get alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from edge.twin.server import MAX_PREDICT_BYTES

PREDICT_TIMEOUT_SECONDS = 300
SOLO_FORWARDS = 4  # requests on their way to one model server before the next ones are combined (1 cost 4 clients
# about a quarter of their rate; its own batcher serves a few at once well: benchmarks/twin_predict.py)
MAX_COMBINED_INSTANCES = 1000  # the model server's default limit per request
_JSON = {"Content-Type": "application/json"}


class ModelServerClient:
    """Keep-alive connections to the model servers: one aiohttp session, made by the first call
    on the serving event loop and closed by `close()` on that loop."""

    def __init__(self) -> None:
        self._session = None

    @staticmethod
    def prepare() -> None:
        """Import aiohttp (about 0.3 s, with its TLS contexts) off the event loop, before the first call."""
        import aiohttp  # noqa: F401

    async def post_json(self, url, body: bytes) -> tuple[int, dict]:
        """POST a JSON body to `url` (a yarl.URL); the status and JSON body of the answer.
        OSError if the server cannot be reached."""
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                timeout=aiohttp.ClientTimeout(total=PREDICT_TIMEOUT_SECONDS),
                skip_auto_headers=("User-Agent",),
            )
        try:
            async with self._session.post(url, data=body, headers=_JSON) as response:
                return response.status, orjson.loads(await response.read() or b"{}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OSError(str(exc) or type(exc).__name__) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(eq=False)
class _Waiting:
    body: bytes
    instances: list
    answer: asyncio.Future


def _instances(body: bytes) -> list | None:
    """The instances of a plain `{"instances": [...]}` body, or None if it cannot be combined."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or payload.keys() != {"instances"} or not isinstance(payload["instances"], list):
        return None
    return payload["instances"] or None


class PredictForwarder:
    """Forwards predict bodies to one model server (used from one event loop)."""

    def __init__(self, client: ModelServerClient, url) -> None:
        self.client = client
        self.url = url
        self.on_the_way = 0
        self.waiting: list[_Waiting] = []
        self.combined_bodies = 0  # bodies that left combined with others
        self._tasks: set[asyncio.Task] = set()

    async def forward(self, body: bytes) -> tuple[int, dict]:
        """The model server's status and JSON answer for `body`. OSError if it cannot be reached."""
        if self.on_the_way < SOLO_FORWARDS:
            return await self._send(body)
        instances = _instances(body)
        if instances is None:
            return await self._send(body)
        waiting = _Waiting(body, instances, asyncio.get_running_loop().create_future())
        self.waiting.append(waiting)
        return await waiting.answer

    async def _send(self, body: bytes) -> tuple[int, dict]:
        self.on_the_way += 1
        try:
            return await self.client.post_json(self.url, body)
        finally:
            self.on_the_way -= 1
            if self.waiting:
                task = asyncio.get_running_loop().create_task(self._send_waiting())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _next_group(self) -> list[_Waiting]:
        """The oldest waiting bodies that fit in one request to the model server."""
        group, size, count = [], 0, 0
        while self.waiting:
            head = self.waiting[0]
            if group and (
                size + len(head.body) > MAX_PREDICT_BYTES or count + len(head.instances) > MAX_COMBINED_INSTANCES
            ):
                break
            group.append(self.waiting.pop(0))
            size, count = size + len(head.body), count + len(head.instances)
        return group

    async def _send_waiting(self) -> None:
        group = self._next_group()
        try:
            await self._send_group(group)
        except Exception as exc:  # no caller may wait forever
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_exception(OSError(f"{type(exc).__name__}: {exc}"))

    async def _send_group(self, group: list[_Waiting]) -> None:
        if not group:
            return
        if len(group) == 1:
            await self._answer_each(group)
            return
        combined = orjson.dumps({"instances": [instance for w in group for instance in w.instances]})
        status, payload = await self._send(combined)
        predictions = payload.get("predictions") if status == 200 else None
        if not isinstance(predictions, list) or len(predictions) != sum(len(w.instances) for w in group):
            await self._answer_each(group)
            return
        self.combined_bodies += len(group)
        offset = 0
        for waiting in group:
            if not waiting.answer.done():  # its caller may have gone away
                waiting.answer.set_result((200, {"predictions": predictions[offset : offset + len(waiting.instances)]}))
            offset += len(waiting.instances)

    async def _answer_each(self, group: list[_Waiting]) -> None:
        """Send every body of `group` by itself; each caller gets its own answer."""

        async def one(waiting: _Waiting) -> None:
            try:
                result = await self._send(waiting.body)
            except Exception as exc:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
                return
            if not waiting.answer.done():
                waiting.answer.set_result(result)

        await asyncio.gather(*(one(waiting) for waiting in group))
