"""The random source every protocol step takes: ``os.urandom`` in production; tests,
recordings and the virtual chip pass a deterministic one."""

from __future__ import annotations

from collections.abc import Callable

#: rng(n) -> n random bytes
Rng = Callable[[int], bytes]
