"""Shared pytest fixtures: the real PC/SC stack with a virtual card, and the opt-in
``--hardware`` switch.

* ``pcscd`` (session): a pcscd that answers; started here if none runs (and stopped at
  the end if nobody else uses it: agent.sim.pcscd keeps leases).
* ``vpcd_card`` (function): ``vpcd_card(card)`` puts a ``VirtualCard`` on
  "Virtual PCD 00 00" and returns when pcscd reports it present; the card is taken off
  (and its absence awaited) at teardown.
* ``--hardware``: tests marked ``hardware`` run only with it; without it they are
  skipped, never failing at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agent.sim.card import VirtualCard

#: how long pcscd may take to notice a virtual card coming or going (vpcd polls ~0.4 s)
CARD_WAIT = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", default=False,
                     help="also run tests that need a real card reader or scanner")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs real hardware: run with --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pcscd() -> Iterator[object]:
    from agent.sim.pcscd import ensure_pcscd, missing_prerequisites

    missing = missing_prerequisites()
    if missing:
        pytest.skip(f"PC/SC stack not installed: {', '.join(missing)}")
    with ensure_pcscd() as handle:
        yield handle


VpcdCardFactory = Callable[..., object]


@pytest.fixture
def vpcd_card(pcscd: object) -> Iterator[VpcdCardFactory]:
    """Factory: ``client = vpcd_card(card, port=VPCD_PORT, wait=True)``."""
    from agent.readers.pcsc import wait_for_card
    from agent.sim.vpcd import VPCD_PORT, VpcdClient

    clients: list[VpcdClient] = []

    def put(card: VirtualCard, port: int = VPCD_PORT, wait: bool = True) -> VpcdClient:
        client = VpcdClient(card, port=port)
        # a card from an earlier test (or a failed one) must be gone first, or pcscd's
        # "present" below would be about that card
        if not wait_for_card(client.reader, False, CARD_WAIT):
            raise AssertionError(f"{client.reader} still holds another card after {CARD_WAIT} s")
        client.start()
        clients.append(client)
        if wait and not wait_for_card(client.reader, True, CARD_WAIT):
            raise AssertionError(f"pcscd did not see the virtual card on {client.reader} within {CARD_WAIT} s")
        return client

    yield put
    for client in clients:
        client.stop()
        wait_for_card(client.reader, False, CARD_WAIT)
