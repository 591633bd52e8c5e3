"""Backends by name and picking the reader to read from."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest

from agent.cli import readers as readers_cli
from agent.config import Config
from agent.errors import ConfigError, NoCardError, NoReaderError, PcscUnavailableError
from agent.readers.base import CardConnection, ReaderBackend, ReaderEvent, ReaderInfo
from agent.readers.nfc import NfcBackend
from agent.readers.pcsc import PcscBackend
from agent.readers.registry import open_reader
from agent.readers.replay import RecordingConnection, ReplayBackend
from agent.readers.sim import SimBackend
from agent.readpath import make_backend

from .cards import make_card


def test_make_backend_by_name(tmp_path: Path) -> None:
    config = Config.defaults().replace("readers", extended_length="on", exclude=["Hello"])
    pcsc = make_backend("pcsc", config)
    assert isinstance(pcsc, PcscBackend) and pcsc.extended_length_option == "on" and pcsc.exclude == ("Hello",)
    nfc = make_backend("nfc:usb:054c:06c1")
    assert isinstance(nfc, NfcBackend) and nfc.path == "usb:054c:06c1"
    sim = make_backend("sim", card=make_card())
    assert isinstance(sim, SimBackend) and sim.list_readers()[0].card_present
    sim_conn = sim.connect(sim.list_readers()[0].name)
    rec = RecordingConnection(sim_conn)
    rec.transmit(bytes.fromhex("00A4000C"))
    rec.save(tmp_path / "f.json", {"profile": "fs-test"})
    replay = make_backend(f"replay:{tmp_path / 'f.json'}")
    assert isinstance(replay, ReplayBackend)


def test_sim_backend_with_a_card_profile_from_the_config() -> None:
    config = Config.defaults().replace("readers", backends=["sim"], sim_profile="nguyen-van-an")
    backend = make_backend("sim", config)
    [info] = backend.list_readers()
    assert info.card_present
    with backend.connect(info.name) as conn:  # the eMRTD application is there (9303-10 AID)
        assert conn.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    with pytest.raises(ConfigError, match="readers.sim_profile 'no-such-person'"):
        make_backend("sim", sim_profile="no-such-person")


@pytest.mark.parametrize(("name", "problem"), [("pcsc2", "unknown reader backend 'pcsc2'"),
                                               ("replay:", "needs a fixture path")])
def test_bad_backend_names(name: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        make_backend(name)


def test_bad_extended_length_value() -> None:
    with pytest.raises(ConfigError, match="extended_length"):
        make_backend("pcsc", extended_length="sometimes")


class DownBackend(ReaderBackend):
    name = "pcsc"

    def list_readers(self) -> list[ReaderInfo]:
        raise PcscUnavailableError("pcscd is not running")

    def connect(self, reader: str) -> CardConnection:
        raise PcscUnavailableError("pcscd is not running")

    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        raise PcscUnavailableError("pcscd is not running")


def test_open_reader_choices() -> None:
    a = SimBackend(("A1", "A2"))
    b = SimBackend(("B1",))
    with pytest.raises(NoCardError, match="no card on any reader.*A1, A2, B1"):
        open_reader([a, b])
    b.insert("B1", make_card())
    assert open_reader([a, b]).reader == "B1"  # the only reader with a card
    a.insert("A2", make_card())
    with pytest.raises(NoReaderError, match="several readers: A2, B1") as info:
        open_reader([a, b])
    assert "--reader" in info.value.hint
    assert open_reader([a, b], "A2").reader == "A2"
    with pytest.raises(NoReaderError, match="'Z9'; readers: A1, A2, B1"):
        open_reader([a, b], "Z9")
    with pytest.raises(NoCardError):
        open_reader([a, b], "A1")


def test_open_reader_with_a_backend_down() -> None:
    sim = SimBackend(("A1",))
    sim.insert("A1", make_card())
    assert open_reader([DownBackend(), sim]).reader == "A1"
    with pytest.raises(PcscUnavailableError):
        open_reader([DownBackend()])
    with pytest.raises(NoReaderError, match="no card reader attached"):
        open_reader([SimBackend(())])


def cli_args(**kw) -> argparse.Namespace:  # type: ignore[no-untyped-def]
    return argparse.Namespace(**{"json": True, "backend": None, "wait": None, **kw})


def test_cli_lists_replay_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = make_backend("sim", card=make_card())
    rec = RecordingConnection(sim.connect(sim.list_readers()[0].name))
    rec.transmit(bytes.fromhex("00A4000C"))
    rec.save(tmp_path / "one.json", {"profile": "fs-test"})
    code = readers_cli.handle(cli_args(backend=[f"replay:{tmp_path / 'one.json'}"]), Config.defaults())
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["readers"][0]["name"] == "replay:one.json" and doc["readers"][0]["card_present"] is True


def test_cli_wait_prints_events(vpcd_card, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    config = Config.defaults().replace("readers", poll_interval=0.2)
    client = vpcd_card(make_card(), inserted=False)
    timer = threading.Timer(0.5, client.insert)
    timer.start()
    try:
        code = readers_cli.handle(cli_args(backend=["pcsc"], wait=2.5), config)
    finally:
        timer.join()
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(r["name"] == client.reader and not r["card_present"] for r in lines[0]["readers"])
    events = [(e["event"], e["reader"]) for e in lines[1:]]
    assert ("card_inserted", client.reader) in events
