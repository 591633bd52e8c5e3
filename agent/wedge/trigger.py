"""What the desk holds for the keyboard wedge: the clerk's two ways of asking for typing
(the counter page's key → ``POST /wedge/type``; the ``[wedge] hotkey``) lead here, to the
identity on show and its verification. Nothing is typed on a read by itself."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.errors import IdAgentError
from agent.wedge.qrtext import WedgeRefused
from agent.wedge.wedge import Wedge, WedgeSettings

logger = logging.getLogger(__name__)

#: seconds the wedge's availability (GET /health) is reused before it is checked again
STATUS_TTL = 5.0


class WedgeBusy(WedgeRefused):
    code = "wedge_busy"
    hint = "Wait for the typing in progress to finish."


class WedgeFailed(IdAgentError):
    code = "wedge_failed"
    http_status = 500
    exit_code = 1
    hint = "Check the desk application; press the key again, and if it repeats send the agent's log to IT."


def refusal(err: IdAgentError, *, read_id: int | None, source: str, backend: str) -> dict[str, Any]:
    """The ``wedge_result`` of a refusal: the error's code and words, how many characters
    had been typed (0 unless the focus moved away during typing) and the target window's
    title when one was chosen."""
    return {"read_id": read_id, "source": source, "ok": False, "status": "refused", "backend": backend,
            "characters": int(getattr(err, "typed", 0)), "window": getattr(err, "window", None), **err.to_dict()}


class WedgeTrigger:
    def __init__(self, settings: WedgeSettings, current_or_raise: Callable[[], Any], *,
                 publish: Callable[[dict[str, Any]], None] | None = None, wedge: Wedge | None = None) -> None:
        """``current_or_raise()``: the identity on show (``.identity``, ``.verification``,
        ``.read_id``), or an IdAgentError when there is none. ``publish``: tells the page
        what happened (typed, or why not)."""
        self.settings = settings
        self._current = current_or_raise
        self._publish = publish
        self._wedge = wedge or Wedge(settings)
        self._hotkey: Any = None
        self.hotkey_problem: str | None = None
        self._status: tuple[float, dict[str, Any]] | None = None
        self._busy = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def type_current(self, source: str = "page") -> dict[str, Any]:
        """Type the identity on show into the configured window; raises when refused.
        Each attempt that reaches an identity is told to the page (``publish``): typed,
        or refused with the error's code (nothing of the typed text is in it)."""
        if not self._busy.acquire(blocking=False):
            raise WedgeBusy("typing is already in progress: nothing more typed")
        try:
            current = self._current()
            try:
                result = self._wedge.type_identity(current.identity, current.verification)
            except IdAgentError as err:
                self._tell(refusal(err, read_id=current.read_id, source=source, backend=self.settings.backend))
                raise
            except Exception as exc:  # an X connection lost mid-typing: still tell the page
                logger.exception("wedge: typing failed")
                failed = WedgeFailed(f"typing failed: {type(exc).__name__}")
                self._tell(refusal(failed, read_id=current.read_id, source=source, backend=self.settings.backend))
                raise failed from exc
            result = {"read_id": current.read_id, "source": source, "ok": True, "code": None, **result}
            self._tell(result)
            return result
        finally:
            self._busy.release()

    def _tell(self, event: dict[str, Any]) -> None:
        if self._publish is not None:
            try:
                self._publish(event)
            except Exception:  # the page missing an event must not undo the typing
                logger.exception("wedge: could not publish the result")

    def status(self) -> dict[str, Any]:
        """The wedge's state for ``GET /health``: enabled, available (and why not), the
        method, and whether the hotkey listens."""
        now = time.monotonic()
        cached = self._status
        if cached is None or now - cached[0] > STATUS_TTL:
            # it opens an X connection: at most once per STATUS_TTL (metrics scrapes call health)
            cached = self._status = (now, self._wedge.status())
        return {**cached[1], "hotkey_listening": self._hotkey is not None, "hotkey_problem": self.hotkey_problem}

    def start(self) -> WedgeTrigger:
        """Listen for the hotkey, when one is configured and the wedge is on."""
        if self.settings.enabled and self.settings.hotkey:
            from agent.wedge.hotkey import HotkeyListener

            def pressed() -> None:
                try:
                    self.type_current("hotkey")
                except IdAgentError as err:
                    # the code only: a message may name the desk application's window
                    logger.warning("wedge: hotkey: nothing typed (%s)", err.code)

            try:
                self._hotkey = HotkeyListener(self.settings.hotkey, pressed, self.settings.display or None).start()
            except IdAgentError as err:
                # the counter page's key still works (or says why not); doctor names the cause
                self.hotkey_problem = err.message
                logger.error("wedge: the hotkey %s does not listen: %s", self.settings.hotkey, err.message)
        return self

    def stop(self) -> None:
        if self._hotkey is not None:
            self._hotkey.stop()
            self._hotkey = None
