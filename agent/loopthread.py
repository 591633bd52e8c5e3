"""An asyncio loop that serves on a thread of its own, started and stopped from another
thread.

The local API (``agent.api.server``) and the reader-kit service
(``agent.compat.socketio_server``) each serve from such a loop; the daemon starts and
stops them from its thread the same way. ``start_loop_thread``: the service's startup
coroutine on a new loop and thread, returning once it listens (or raising what kept it
from listening, with the loop already closed); ``stop_loop_thread``: the service's own
shutdown coroutine on its loop (bounded by ``timeout``), then the loop stopped, its
leftover tasks cancelled, and the thread joined.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

Startup = Callable[[], Coroutine[Any, Any, None]]


def start_loop_thread(name: str, startup: Startup, timeout: float, *,
                      on_ready: Callable[[asyncio.AbstractEventLoop], None] | None = None,
                      on_failure: Startup | None = None) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """Run ``startup()`` on a new loop in a new (daemon) thread called ``name``, then
    ``on_ready(loop)`` on that thread, and serve until ``stop_loop_thread``. Returns once
    ``startup`` is done. An ``OSError`` from ``startup`` (the port taken, an address not
    ours) is raised here after ``on_failure()`` ran on the loop and the loop was closed
    and its thread ended; ``TimeoutError`` when ``startup`` takes longer than ``timeout``."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failed: list[OSError] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(startup())
        except OSError as exc:
            failed.append(exc)
            if on_failure is not None:
                loop.run_until_complete(on_failure())
            loop.close()
            ready.set()
            return
        if on_ready is not None:
            on_ready(loop)
        ready.set()
        try:
            loop.run_forever()
        finally:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    if not ready.wait(timeout):
        raise TimeoutError(f"{name} did not start within {timeout} s")
    if failed:
        thread.join(timeout)
        raise failed[0]
    return loop, thread


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """What the service's shutdown left running is cancelled and awaited (as
    ``asyncio.run`` does), so that no task is destroyed while pending."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


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
