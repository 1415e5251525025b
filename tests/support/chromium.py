"""Debian's Chromium, headless, one page per run (`make browser` installs it)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def chromium(url: str, *args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
    """Run Chromium on `url` with a fresh profile; its process group is killed if it
    outlives `timeout_s`, and the profile is removed."""
    with tempfile.TemporaryDirectory(prefix="govfn-chromium-") as profile:
        command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "HOME": profile},
        )
        try:
            out, err = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate(timeout=10)
            raise AssertionError(f"chromium took over {timeout_s}s on {url}:\n{err}") from None
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        return subprocess.CompletedProcess(command, process.returncode, out, err)
