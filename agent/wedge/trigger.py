"""What the desk holds for the keyboard wedge: the clerk's two ways of asking for typing
(the counter page's key → ``POST /wedge/type``; the ``[wedge] hotkey``) lead here, to the
identity on show and its verification. Nothing is typed on a read by itself."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from agent.errors import IdAgentError
from agent.wedge.service import Wedge, WedgeSettings

logger = logging.getLogger(__name__)


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
        self._busy = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def type_current(self, source: str = "page") -> dict[str, Any]:
        """Type the identity on show into the configured window; raises when refused."""
        if not self._busy.acquire(blocking=False):
            from agent.wedge.qrtext import WedgeRefused

            raise WedgeRefused("typing is already in progress", hint="Wait for it to finish.")
        try:
            current = self._current()
            try:
                result = self._wedge.type_identity(current.identity, current.verification)
            except IdAgentError as err:
                self._tell({"read_id": current.read_id, "status": "refused", "source": source, **err.to_dict()})
                raise
            result = {"read_id": current.read_id, "source": source, **result}
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

    def start(self) -> WedgeTrigger:
        """Listen for the hotkey, when one is configured and the wedge is on."""
        if self.settings.enabled and self.settings.hotkey:
            from agent.wedge.hotkey import HotkeyListener

            def pressed() -> None:
                try:
                    self.type_current("hotkey")
                except IdAgentError as err:
                    logger.warning("wedge: hotkey: %s", err.message)

            self._hotkey = HotkeyListener(self.settings.hotkey, pressed, self.settings.display or None).start()
        return self

    def stop(self) -> None:
        if self._hotkey is not None:
            self._hotkey.stop()
            self._hotkey = None
