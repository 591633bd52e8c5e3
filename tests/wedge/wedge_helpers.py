"""Helpers for the wedge tests: a real X server (Xvfb) on a free display."""

from __future__ import annotations

import os
import subprocess


class XServer:
    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        # -displayfd: the server picks a free display number and writes it to us
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24",
                                      "-nolisten", "tcp"], pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
