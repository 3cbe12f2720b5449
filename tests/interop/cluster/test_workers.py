"""``hub serve --workers N`` on Redis: workers share events through it."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio
import trio.testing

from tests.helpers.processes import hub_process
from tests.helpers.redis_server import RedisServer
from tests.helpers.workers import clients_on_both_workers, info, publish_everywhere, workers


async def test_workers_on_redis_share_events_through_it(redis: RedisServer) -> None:
    await redis.ready()
    async with hub_process(*workers("--source", "none", "--broker", redis.url)) as hub:
        url, _, _ = await hub.listening()
        async with AsyncExitStack() as stack:
            clients = await clients_on_both_workers(stack, url)
            for client in clients:
                with trio.fail_after(15):
                    while not (await info(client))["broker"]["connected"]:  # noqa: ASYNC110
                        await trio.sleep(0.05)
        await publish_everywhere(hub, url)
