"""``idagent run``: the counter page URL carries the API token, so it is printed only
to a terminal; under systemd stdout goes to the journal, which more users may read
than the 0600 token file."""

from __future__ import annotations

import argparse
import importlib
import io
from types import SimpleNamespace
from typing import Any

import pytest

import agent.daemon
from agent.config import Config

run_cli = importlib.import_module("agent.cli.run")
TOKEN = "tok-" + "x" * 40


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(monkeypatch: pytest.MonkeyPatch, stdout: io.StringIO, **flags: Any) -> str:
    config = Config.defaults()
    fake = SimpleNamespace(_api=SimpleNamespace(token=TOKEN), config=config, port=8765)
    monkeypatch.setattr(agent.daemon.Daemon, "from_config", classmethod(lambda cls, *a, **k: fake))

    def until_signalled(daemon: object, *, on_ready: Any = None) -> int:
        on_ready()
        return 0

    monkeypatch.setattr(agent.daemon, "run_until_signalled", until_signalled)
    monkeypatch.setattr("sys.stdout", stdout)
    args = argparse.Namespace(config=None, port=None, no_url=flags.get("no_url", False),
                              json=flags.get("json", False))
    assert run_cli.run(args, config) == 0
    return stdout.getvalue()


def test_url_with_token_only_to_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "#token=" + TOKEN in _run(monkeypatch, _Tty())
    # a pipe, a file, the systemd journal: no token
    assert TOKEN not in _run(monkeypatch, io.StringIO())
    assert TOKEN not in _run(monkeypatch, _Tty(), no_url=True)
