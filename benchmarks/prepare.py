"""Make what the benchmarks need: a venv per peer under .bench/venvs/, and wrk.

Each venv is rebuilt only when its requirements change (a stamp file holds them), so
`make bench` can run this every time. wrk comes from Debian's package when it is missing.

    python -m benchmarks.prepare
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

from benchmarks.servers import BENCH_DIR, PEER_REQUIREMENTS, venv_dir


def ensure_venv(peer: str, requirements: tuple[str, ...]) -> Path:
    """Create .bench/venvs/<peer> with `requirements`, unless its stamp says it is current."""
    where = venv_dir(peer)
    stamp = where / ".requirements"
    wanted = "\n".join(requirements) + "\n"
    if stamp.is_file() and stamp.read_text() == wanted:
        return where
    print(f"prepare: building venv {where} ({', '.join(requirements)})", flush=True)
    if where.exists():
        shutil.rmtree(where)
    venv.EnvBuilder(with_pip=True).create(where)
    python = str(where / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", *requirements], check=True)
    stamp.write_text(wanted)
    return where


def ensure_wrk() -> str:
    """Path of wrk; installs Debian's package (apt-get) when it is not on PATH."""
    found = shutil.which("wrk")
    if found:
        return found
    print("prepare: installing wrk (apt-get install -y wrk)", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(install, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("prepare: wrk is still not on PATH after apt-get install")
    return found


def main() -> None:
    BENCH_DIR.mkdir(exist_ok=True)
    for peer, requirements in PEER_REQUIREMENTS.items():
        ensure_venv(peer, requirements)
    print(f"prepare: peer venvs ready; wrk at {ensure_wrk()}", file=sys.stderr)


if __name__ == "__main__":
    main()
