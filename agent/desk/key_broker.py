"""Access keys waiting for a card: one typed in (``POST /read``) and the last QR scan.

A key typed in or scanned serves a card that arrives within ``KEY_WINDOW`` seconds;
after that it is dropped (with the QR's identity), so yesterday's scan never opens
today's card. One QR goes with one card: its identity is taken by the first read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.icao.keys import AccessKey
from agent.identity import Identity
from agent.pipeline import QrScan

#: a key typed in or scanned is used for a card that arrives within this many seconds
KEY_WINDOW = 120.0


class KeyBroker:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.pending_key: tuple[AccessKey, float] | None = None
        self.last_qr: QrScan | None = None

    def hold_key(self, key: AccessKey) -> None:
        """Keep a typed key for the next card."""
        with self._lock:
            self.pending_key = (key, self._clock())

    def hold_scan(self, scan: QrScan) -> None:
        """Keep a QR scan (its keys and identity) for the next card."""
        with self._lock:
            self.last_qr = scan

    def keys_for_card(self) -> list[AccessKey]:
        """Keys for a card just laid down: the typed one first (used once), then the QR's."""
        now = self._clock()
        keys: list[AccessKey] = []
        with self._lock:
            if self.pending_key is not None:
                key, at = self.pending_key
                self.pending_key = None
                if now - at <= KEY_WINDOW:
                    keys.append(key)
            if self.last_qr is not None and now - self.last_qr.at <= KEY_WINDOW:
                keys += [k for k in self.last_qr.keys if k not in keys]
        return keys

    def take_qr_identity(self) -> Identity | None:
        """The identity of a QR scanned within the window, taken (one QR, one card)."""
        with self._lock:
            scan = self.last_qr
            if scan is None or self._clock() - scan.at > KEY_WINDOW:
                return None
            self.last_qr = None
            return scan.identity

    def expire(self) -> None:
        """Drop a QR scan or a typed key that no card came for."""
        now = self._clock()
        with self._lock:
            if self.last_qr is not None and now - self.last_qr.at > KEY_WINDOW:
                self.last_qr.identity.clear()
                self.last_qr = None
            if self.pending_key is not None and now - self.pending_key[1] > KEY_WINDOW:
                self.pending_key = None

    def forget(self) -> None:
        """Drop every key and scan now (the agent stops): a QR's identity must not outlive
        the agent in memory, nor wait for the window to pass."""
        with self._lock:
            if self.last_qr is not None:
                self.last_qr.identity.clear()
                self.last_qr = None
            self.pending_key = None
