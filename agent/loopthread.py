"""Stopping an asyncio loop that runs on its own thread, from another thread.

The local API (``agent.api.server``) and the reader-kit service
(``agent.compat.socketio_server``) each serve from a loop on a thread of their own; the daemon
stops them from its thread the same way: the service's own shutdown coroutine on its
loop (bounded by ``timeout``), then the loop stopped and the thread joined.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


def stop_loop_thread(loop: asyncio.AbstractEventLoop | None, thread: threading.Thread | None,
                     shutdown: Callable[[], Coroutine[Any, Any, None]], timeout: float, name: str) -> None:
    """Run ``shutdown()`` on ``loop``, then stop the loop and join ``thread``; a loop
    never started or already closed is left alone."""
    if loop is None or loop.is_closed():
        return
    future = asyncio.run_coroutine_threadsafe(shutdown(), loop)
    try:
        future.result(timeout)
    except TimeoutError:
        logger.warning("%s shutdown timed out", name)
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(timeout)
