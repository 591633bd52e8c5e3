"""Shared pytest fixtures: the real PC/SC stack with a virtual card, and the opt-in
``--hardware`` switch.

* ``pcscd`` (session): a pcscd that answers; started here if none runs (and stopped at
  the end if nobody else uses it: agent.sim.pcscd keeps leases).
* ``vpcd_card`` (function): ``vpcd_card(card)`` puts a ``VirtualCard`` on
  "Virtual PCD 00 00" (or 00 01 when another test run holds 00 00: use the returned
  client's ``.reader``) and returns when pcscd reports it present; the card is taken
  off (and its absence awaited) at teardown.
* ``vpcd_empty_reader``: the name of a vpcd reader kept empty during the test.
* ``--hardware``: tests marked ``hardware`` run only with it; without it they are
  skipped, never failing at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from agent.sim.card import VirtualCard

# No per-example wall-clock deadline for property tests (Hypothesis's default is 200 ms):
# on a loaded machine, or during a garbage collection of a full run's heap, a fast
# example can take longer and fail the test as "flaky" for no fault of the code. Speed
# is measured in bench/, not asserted here. (Tests setting their own ``deadline`` keep it.)
settings.register_profile("idagent", deadline=None)
settings.load_profile("idagent")

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
    _interrupt_on_sigterm()
    with ensure_pcscd() as handle:
        yield handle


def _interrupt_on_sigterm() -> None:
    """A test run stopped by SIGTERM (``timeout``, CI cancelling) would die without
    teardown and leave the pcscd it started running. As KeyboardInterrupt, pytest
    unwinds and the fixtures release their lease, stopping that pcscd."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)


VpcdCardFactory = Callable[..., object]
#: how long to wait for a free vpcd slot (another test run or 'idagent sim' may hold one)
SLOT_WAIT = 120.0


def _claim_slot(card: VirtualCard, ports: list[int], inserted: bool) -> object:
    """Start a VpcdClient on the first of ``ports`` whose per-machine slot lock is free
    (agent.sim.vpcd), waiting for one to free up; then wait until pcscd shows that
    reader empty, so a card seen later is ours."""
    import time

    from agent.errors import ReaderError
    from agent.readers.pcsc import reader_names, wait_for_card
    from agent.sim.pcscd import LOG_FILE
    from agent.sim.vpcd import VpcdClient, reader_name

    present = reader_names()
    if not any(reader_name(port) in present for port in ports):
        raise AssertionError(f"pcscd lists no vpcd reader for ports {ports} (readers: {present}); "
                             f"see {LOG_FILE} (vpcd 'Address already in use': its port was in TIME_WAIT)")
    deadline = time.monotonic() + SLOT_WAIT
    while True:
        for port in ports:
            if reader_name(port) not in present:
                continue
            client = VpcdClient(card, port=port, inserted=False, lock_timeout=0)
            try:
                client.start()
            except ReaderError:
                continue
            try:
                if not wait_for_card(client.reader, False, CARD_WAIT):
                    raise AssertionError(f"{client.reader} still shows a card after {CARD_WAIT} s")
            except BaseException:
                client.stop()  # never keep the slot lock of a client nobody will stop
                raise
            if inserted:
                client.insert()
            return client
        if time.monotonic() > deadline:
            raise AssertionError(f"no free vpcd slot among ports {ports} within {SLOT_WAIT} s")
        time.sleep(0.2)


@pytest.fixture
def vpcd_card(pcscd: object) -> Iterator[VpcdCardFactory]:
    """Factory: ``client = vpcd_card(card, port=None, wait=True, inserted=True)`` puts
    ``card`` on "Virtual PCD 00 00" (or on "... 00 01" while another process holds
    00 00; use ``client.reader``). ``wait`` returns once pcscd reports the card present;
    ``inserted=False`` only reserves the (empty) reader: ``client.insert()`` later."""
    from agent.readers.pcsc import wait_for_card
    from agent.sim.vpcd import VPCD_PORT, VpcdClient

    clients: list[VpcdClient] = []

    def put(card: VirtualCard, port: int | None = None, wait: bool = True, inserted: bool = True) -> VpcdClient:
        ports = [port] if port is not None else [VPCD_PORT, VPCD_PORT + 1]
        client = _claim_slot(card, ports, inserted=inserted)
        assert isinstance(client, VpcdClient)
        if inserted and wait and not wait_for_card(client.reader, True, CARD_WAIT):
            # seen in fresh-clone runs (2 of ~6 full suites, always the first vpcd test
            # of a module): pcscd never reported the inserted card. Cause not confirmed
            # (pcscd's log says nothing); the likeliest is its vpcd driver still holding
            # the previous client's connection. Connect once more, as a clerk would lift
            # and lay the card again; a second miss is a failure.
            client.stop()
            wait_for_card(client.reader, False, CARD_WAIT)
            client = _claim_slot(card, ports, inserted=inserted)
            assert isinstance(client, VpcdClient)
            if not wait_for_card(client.reader, True, CARD_WAIT):
                client.stop()
                raise AssertionError(f"pcscd did not see the virtual card on {client.reader} within {CARD_WAIT} s"
                                     " (twice, reconnected in between)")
        clients.append(client)
        return client

    yield put
    for client in clients:
        client.stop()
        wait_for_card(client.reader, False, CARD_WAIT)


@pytest.fixture
def vpcd_empty_reader(pcscd: object) -> Iterator[str]:
    """The name of a vpcd reader that stays empty during the test (its slot is held).
    Do not combine with ``vpcd_card`` in one test: two test runs each holding one slot
    and waiting for the other would wait on each other."""
    from agent.sim.card import FileSystemCard
    from agent.sim.vpcd import VPCD_PORT, VpcdClient

    client = _claim_slot(FileSystemCard(), [VPCD_PORT + 1, VPCD_PORT], inserted=False)
    assert isinstance(client, VpcdClient)
    yield client.reader
    client.stop()
