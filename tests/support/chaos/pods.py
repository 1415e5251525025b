"""`govfn serve --function billing` pods, as Knative runs them: each a real process tree
(gunicorn arbiter and worker) in a folder of its own, its emptyDir (`var/spool/` is its
spool), all on one PostgreSQL. A pod takes deliveries once it is ready; it can be SIGKILLed
(arbiter and workers at once, as a node loss or an OOM kill does) and started again on its
folder or on a fresh one, and scaled to zero (SIGTERM, then its folder removed).

With `small_spool`, each pod's `var/spool/` is a 64 KiB tmpfs (mounted as root, which CI
is), so that `fill_spool` makes the backstop's next write fail with a real ENOSPC; where
mounting is refused, `fill_spool` points the spool files of the pod's workers at
/dev/full instead (the same ENOSPC, from the device).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from support.http_server import Server, start_server, stop_server, worker_pids

SPOOL_BYTES = 64 * 1024
_READY_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3


@dataclass
class Pod:
    name: str
    folder: Path
    server: Server
    workers: list[int] = field(default_factory=list)
    spool_mounted: bool = False
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def spool(self) -> Path:
        return self.folder / "var" / "spool"

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class Pods:
    def __init__(self, root: Path, uri: str, *, small_spool: bool = False) -> None:
        self.root = root
        self.uri = uri
        self.small_spool = small_spool
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.live: list[Pod] = []
        self.gone: list[Pod] = []  # killed: their folders stay until scale-to-zero
        self.exits: dict[str, int | None] = {}  # scale-to-zero: each pod's exit status
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def ready(self) -> list[Pod]:
        with self._lock:
            return list(self.live)

    # -- starting and killing -----------------------------------------------------------

    def start(self, folder: Path | None = None) -> Pod:
        """A pod on `folder` (a fresh one by default), added once ready (or after a bounded
        wait: a pod that is not ready answers 503, which the broker retries)."""
        number = next(self._numbers)
        folder = folder or self.root / f"pod-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / "server.log").exists():  # a restart on the same folder: keep the story
            (folder / "server.log").rename(self.logs / f"{folder.name}.before-{number}.log")
        spool = folder / "var" / "spool"
        mounted = self.small_spool and (os.path.ismount(spool) or _mount_small_spool(spool))
        for attempt in range(_START_ATTEMPTS):
            try:
                server = start_server(
                    folder,
                    "--function",
                    "billing",
                    cwd=folder,
                    env={"GOVFN_CHRONICLE": self.uri},
                    wait_for="/health/liveness",
                    timeout_s=60,
                )
                break
            except AssertionError as failed:
                # The free port it was given was taken before it bound it (an outgoing
                # connection's ephemeral port, say): another port.
                if "Address already in use" not in str(failed) or attempt == _START_ATTEMPTS - 1:
                    raise
        pod = Pod(f"pod-{number}", folder, server, spool_mounted=mounted)
        pod.workers = _workers(server)
        _wait_ready(server)
        with self._lock:
            self.live.append(pod)
        return pod

    def kill(self, pod: Pod) -> None:
        """SIGKILL the pod's arbiter and workers together; it leaves the ready set first
        (Knative stops routing to a pod whose process is gone)."""
        with self._lock:
            self.live.remove(pod)
            self.gone.append(pod)
        workers = _workers(pod.server) or pod.workers
        for pid in [pod.server.process.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pod.server.process.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, pod: Pod, *, same_folder: bool) -> Pod:
        """A new pod in the place of a killed one: on its folder (its spool adopted), or on
        a fresh folder (an emptyDir dies with its pod: whatever it held is gone)."""
        if not same_folder:
            return self.start()
        successor = self.start(pod.folder)
        pod.spool_mounted = False  # the successor owns the mount now
        return successor

    # -- the spool's disk ---------------------------------------------------------------

    def fill_spool(self, pod: Pod) -> str:
        """Make the pod's next spool write fail with ENOSPC; says how."""
        pod.spool.mkdir(parents=True, exist_ok=True)
        if pod.spool_mounted:
            fd = os.open(pod.spool / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                for _ in range(SPOOL_BYTES // 512 + 16):
                    os.write(fd, b"\0" * 4096)
                raise AssertionError(f"{pod.spool} did not fill up")
            except OSError as full:
                if full.errno != errno.ENOSPC:
                    raise
            finally:
                os.close(fd)
            return "tmpfs full"
        for pid in _workers(pod.server) or pod.workers:
            target = pod.spool / f"spool-{pid}.jsonl"
            if not target.exists():
                target.symlink_to("/dev/full")
        return "/dev/full"

    def free_spool(self, pod: Pod) -> None:
        (pod.spool / "filler").unlink(missing_ok=True)
        for path in pod.spool.glob("spool-*.jsonl"):
            if path.is_symlink():
                path.unlink()

    # -- scale to zero ------------------------------------------------------------------

    def scale_to_zero(self) -> None:
        """SIGTERM every live pod and wait for it (its exit status in `exits`), then remove
        every pod's folder (live or killed), keeping its log in `logs/`."""
        with self._lock:
            live, self.live = self.live, []
        threads = [threading.Thread(target=stop_server, args=(pod.server,)) for pod in live]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for pod in live:
            self.exits[pod.name] = pod.server.process.poll()
        for pod in [*live, *self.gone]:
            self.remove(pod)
        self.gone = []

    def remove(self, pod: Pod) -> None:
        if (pod.folder / "server.log").exists():
            shutil.copy(pod.folder / "server.log", self.logs / f"{pod.name}.log")
        if pod.spool_mounted:
            _unmount(pod.spool)
            pod.spool_mounted = False
        shutil.rmtree(pod.folder, ignore_errors=True)

    def close(self) -> None:
        """Whatever is left (a failed run): kill it, unmount, remove."""
        with self._lock:
            left, self.live = self.live + self.gone, []
            self.gone = []
        for pod in left:
            stop_server(pod.server)
            self.remove(pod)

    def log_tail(self, lines: int = 40) -> str:
        """The end of every pod's log, for a failure's story."""
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()
            parts.append(f"--- {path.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


def _workers(server: Server) -> list[int]:
    try:
        return worker_pids(server.process.pid)
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            with urllib.request.urlopen(server.url + "/health/readiness", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.05)


def _mount_small_spool(spool: Path) -> bool:
    """A tmpfs of SPOOL_BYTES on `spool` (root only); False where it cannot be mounted."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    spool.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SPOOL_BYTES},mode=0755", "govfn-spool", str(spool)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def _unmount(spool: Path) -> None:
    done = subprocess.run(["umount", str(spool)], capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(spool)], capture_output=True, timeout=30, check=False)
