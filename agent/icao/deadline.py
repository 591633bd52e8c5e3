"""The agent's own deadlines for a chip read: per command and per read (issue 14).

A reader (or card) that goes silent leaves ``SCardTransmit`` blocked for as long as
the driver likes (15.9 s measured with vpcd; forever with some USB readers). Every
command of a read goes through :class:`DeadlineChannel`: it runs on a worker thread and
the read waits at most ``apdu_timeout`` for it, and never past ``read_timeout`` from
the start of the read. A command that does not come back in time fails the read with
``ReaderTimeoutError`` (exit 6); the stuck worker is abandoned (a daemon thread that
ends when the driver finally returns) and the connection is not used again. The read
closes its channel when it ends, which ends the worker.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.errors import ReaderError
from agent.readers.apdu import Channel, Command, Response

#: defaults of ``[card] apdu_timeout`` / ``read_timeout`` (seconds)
DEFAULT_APDU_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 20.0


class ReaderTimeoutError(ReaderError):
    """The reader did not answer a command within the agent's deadline."""

    code = "reader_timeout"
    exit_code = 6
    hint = ("The reader stopped answering: take the card off, check the reader's cable (unplug and plug it "
            "back in if this repeats), then lay the card down again.")


class ReadDeadlineError(ReaderTimeoutError):
    """The whole read took longer than its deadline."""

    code = "read_deadline"
    hint = "The read took too long: lay the card flat and still on the reader and try again."


class _Worker:
    """One daemon thread running the commands of one read, one at a time. ``close()``
    ends it once the command in hand (if any) has returned; between commands it holds
    nothing of the read (a finished job's answer or error, whose traceback reaches
    every frame of the read and of its caller, goes with the job)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="chip-read-apdu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, box, done = item
            try:
                box["value"] = job()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting read
                box["error"] = exc
            done.set()
            # the waiting read has the box: keep no reference to it, nor to the job
            del item, job, box, done

    def run(self, job: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
        """(finished, value); re-raises what ``job`` raised."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self._jobs.put((job, box, done))
        if not done.wait(timeout):
            return False, None
        if "error" in box:
            error = box.pop("error")
            try:
                raise error
            finally:
                del error  # no cycle through this frame (the traceback holds it)
        return True, box.get("value")

    def close(self) -> None:
        """No more commands: the thread ends (after the one in hand, if it is stuck)."""
        self._jobs.put(None)


class DeadlineChannel:
    """A ``Channel`` whose commands each wait at most ``apdu_timeout`` seconds for
    their answer, and never past ``read_timeout`` from the channel's creation."""

    def __init__(self, inner: Channel, *, apdu_timeout: float, read_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.apdu_timeout = apdu_timeout
        self.read_timeout = read_timeout
        self._clock = clock
        self._deadline = clock() + read_timeout
        self._worker = _Worker()
        self._stuck = False

    @property
    def extended_length(self) -> bool:
        return bool(self.inner.extended_length)

    def send(self, command: Command) -> Response:
        if self._stuck:
            raise ReaderTimeoutError("the reader has not answered an earlier command of this read")
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise ReadDeadlineError(f"the read took longer than its {self.read_timeout:g} s deadline "
                                    f"([card] read_timeout), at {command.header()}")
        wait = min(self.apdu_timeout, remaining)
        finished, response = self._worker.run(lambda: self.inner.send(command), wait)
        if finished:
            return response  # type: ignore[no-any-return]
        self._stuck = True
        connection = getattr(self.inner, "connection", None)
        if connection is not None and hasattr(connection, "abandon"):
            connection.abandon()  # the reader may answer one day: release without waiting
        if wait < self.apdu_timeout:
            raise ReadDeadlineError(f"the read took longer than its {self.read_timeout:g} s deadline "
                                    f"([card] read_timeout), waiting for the answer to {command.header()}")
        raise ReaderTimeoutError(f"the reader did not answer {command.header()} within {self.apdu_timeout:g} s "
                                 "([card] apdu_timeout)")

    def close(self) -> None:
        """The read is over: its worker thread ends (a stuck one when the driver returns)."""
        self._worker.close()
