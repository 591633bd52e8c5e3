"""The atheris (libFuzzer, coverage-guided) driver shared by the fuzz/fuzz_<name>.py
scripts: instruments the agent's modules (and asn1crypto, which parses EF.SOD and the
certificates in it), then feeds libFuzzer's inputs to one target of fuzz_targets.

An input that makes anything but a typed IdAgentError escape is written to
``$IDAGENT_FUZZ_CRASH_DIR`` (default fuzz/crashers/new) with its traceback, then the
exception propagates so libFuzzer records the crash and stops; fuzz/run.py restarts it
for the rest of the time budget.
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

#: modules whose code the fuzzer gets coverage feedback from
INSTRUMENTED = ("agent.icao.tlv", "agent.icao.lds.com", "agent.icao.lds.dg1", "agent.icao.lds.dg2",
                "agent.icao.lds.dg11", "agent.icao.lds.dg12", "agent.icao.lds.dg13", "agent.icao.lds.text",
                "agent.icao.securityinfo", "agent.icao.sod", "agent.icao.aa", "agent.icao.mrz",
                "agent.icao.sm", "agent.icao.ca", "agent.icao.pa", "agent.icao.verify", "agent.qr.payload",
                "agent.qr.repair", "agent.qr.access_keys", "agent.config", "agent.api.request")


def _save(name: str, data: bytes, exc: BaseException) -> None:
    folder = Path(os.environ.get("IDAGENT_FUZZ_CRASH_DIR", HERE / "crashers" / "new"))
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{hashlib.sha1(data).hexdigest()[:16]}"
    (folder / f"{stem}.bin").write_bytes(data)
    (folder / f"{stem}.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")


def main(name: str) -> None:
    with atheris.instrument_imports(include=["agent", "asn1crypto"]):
        import importlib

        for module in INSTRUMENTED:
            importlib.import_module(module)
        import fuzz_targets
    target = fuzz_targets.TARGETS[name]

    def one_input(data: bytes) -> None:
        try:
            target.check(data)
        except Exception as exc:
            _save(name, data, exc)
            raise

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
