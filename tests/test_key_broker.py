"""The key broker forgets a pending QR scan and typed key when the agent stops."""

from __future__ import annotations

from agent.desk.key_broker import KeyBroker
from agent.identity import Identity
from agent.pipeline import QrScan


def test_forget_clears_the_scanned_identity_and_the_typed_key() -> None:
    broker = KeyBroker(clock=lambda: 100.0)
    identity = Identity(id_number="001099012345", full_name="NGUYỄN VĂN AN")
    broker.hold_scan(QrScan(keys=[], identity=identity, at=100.0))
    broker.forget()
    assert broker.last_qr is None and broker.pending_key is None
    assert identity.id_number is None and identity.full_name is None
    assert broker.take_qr_identity() is None
