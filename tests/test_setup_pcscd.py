"""scripts/setup.sh on a machine without systemd: installing the pcscd package starts the
daemon from its init script (invoke-rc.d), and that pcscd stayed running after the test
suite (issue 13). setup.sh stops the one its install started, never one that ran before.

Run in a private PID namespace (``unshare --pid --fork --mount-proc``) with stand-ins for
dpkg-query, apt-get and invoke-rc.d on PATH, so the machine's packages and its real pcscd
(or another engineer's) are never touched: the stand-in "pcscd" is a sleeping process
carrying that name."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                                or Path("/run/systemd/system").is_dir(),
                                reason="needs root, unshare, and a machine without systemd")

FAKES = {
    # every package installed except pcscd
    "dpkg-query": '#!/bin/sh\nfor last; do :; done\n[ "$last" = pcscd ] || printf "install ok installed"\n',
    # the package's postinst: invoke-rc.d pcscd start (a daemon named pcscd, detached)
    "apt-get": '#!/bin/bash\n[ "$1" = install ] || exit 0\n'
               '(exec -a pcscd sleep 300 </dev/null >/dev/null 2>&1 &)\nsleep 0.2\n',
    "invoke-rc.d": '#!/bin/sh\n[ "$1 $2" = "pcscd stop" ] || exit 1\nkill $(pidof pcscd)\n',
}


def _run_setup(tmp_path: Path, *, pcscd_before: bool) -> str:
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, text in FAKES.items():
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    before = "(exec -a pcscd sleep 300 </dev/null >/dev/null 2>&1 &); sleep 0.2; " if pcscd_before else ""
    script = f"{before}bash scripts/setup.sh >&2; sleep 0.2; pidof pcscd || true"
    env = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}"}
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", script],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_pcscd_started_by_the_install_is_stopped(tmp_path: Path) -> None:
    assert _run_setup(tmp_path, pcscd_before=False) == ""


def test_a_pcscd_running_before_is_left_alone(tmp_path: Path) -> None:
    assert _run_setup(tmp_path, pcscd_before=True) != ""
