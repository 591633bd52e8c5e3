"""Real readers, opt-in: ``pytest --hardware tests/readers/test_hardware.py`` with a
reader plugged in and a chip card (any ISO 14443-4 / ISO 7816 card) on it."""

from __future__ import annotations

import pytest

from agent.icao.select import select_application
from agent.readers.apdu import ApduChannel
from agent.readers.nfc import NfcBackend
from agent.readers.pcsc import PcscBackend, pcscd_status
from agent.readers.registry import open_reader

pytestmark = pytest.mark.hardware

#: eMRTD application (ICAO 9303-10 §3.1)


def test_pcsc_reader_with_a_card_answers() -> None:
    ok, message = pcscd_status()
    assert ok, message
    backend = PcscBackend(exclude=("Virtual PCD",))
    readers = backend.list_readers()
    assert readers, "no real PC/SC reader attached"
    with open_reader([backend]) as conn:
        assert conn.atr, "the reader reported no ATR"
        ch = ApduChannel(conn)
        # any status word will do: the point is a well-formed answer through the real stack
        response = select_application(ch)
        assert 0x6000 <= response.sw <= 0x9FFF
    backend.close()


def test_nfcpy_reader_with_a_card_answers() -> None:
    backend = NfcBackend("usb")
    readers = backend.list_readers()
    if not readers:
        pytest.skip("no nfcpy-driven reader (e.g. Sony RC-S380) attached")
    assert readers[0].card_present, f"lay a card on {readers[0].name}"
    with backend.connect(readers[0].name) as conn:
        response = select_application(ApduChannel(conn))
        assert 0x6000 <= response.sw <= 0x9FFF
    backend.close()
