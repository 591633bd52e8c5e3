from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from agent.cli import AREAS, build_parser, main


@pytest.mark.parametrize("area", AREAS)
def test_every_area_module_exists_and_registers(area: str) -> None:
    module = importlib.import_module(f"agent.cli.{area}")
    assert callable(module.register)


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for line in ("exit codes:", "2  card read, but NOT verified", "5  access denied"):
        assert line in out
    for area in ("readers", "read", "qr", "run", "doctor", "sim"):
        assert area in out


def test_every_subcommand_has_help_and_json() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, subparser in sub.choices.items():
        text = subparser.format_help()
        assert "--json" in text, name


def test_bad_config_exits_3_with_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "c.toml"
    bad.write_text("[api]\nport = 0\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "agent", "--config", str(bad), "doctor"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert "[api] port" in proc.stderr and "hint:" in proc.stderr
