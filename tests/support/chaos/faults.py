"""The faults a run injects, while the broker delivers, each chosen and timed by the seed:

- `kill-same`: a pod with requests in flight SIGKILLed; a new one starts on its folder.
- `kill-fresh`: the same, the new pod on a fresh folder (the emptyDir died with the pod).
- `db-restart`: PostgreSQL stopped (`pg_ctl stop -m immediate`), started again 1-3 s later.
- `terminate`: every client connection of the database ended (`pg_terminate_backend`), 1-3x.
- `cut`: the proxy between the pods and PostgreSQL drops every connection, 1-3x.
- `slow-db`: the proxy delays every chunk by 20-100 ms each way, for 1.5-3 s.
- `answer-lost`: the proxy delays every chunk by 50 ms and cuts every connection every
  0.2-0.5 s for 2-3 s: commits are cut after the database got them, before their answer.
- `spool-full`: every pod's spool disk full (ENOSPC) while PostgreSQL is down 1-2.5 s.
- `ledger-refuses`: the spools full and the ledger's INSERTs refused (a trigger) while the
  claims still work, 1-2.5 s; then every pod SIGKILLed at once (a node lost) and started
  again on its folder: what only memory held is gone.

A fault begins once a fraction `at` of the deliveries has begun (its first chance after
that), and the run's faults follow one another in one thread. `note` says what was done.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from support.chaos.pods import Pod, Pods
from support.chaos.proxy import TcpProxy
from support.postgres import PostgresServer

KINDS = (
    "kill-same",
    "kill-fresh",
    "db-restart",
    "terminate",
    "cut",
    "slow-db",
    "answer-lost",
    "spool-full",
    "ledger-refuses",
)
_REFUSE = """
CREATE OR REPLACE FUNCTION public.chaos_refuse() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'chaos: the ledger refuses records'; END $$;
CREATE TRIGGER chaos_refuse BEFORE INSERT ON chronicle.records
    FOR EACH ROW EXECUTE FUNCTION public.chaos_refuse();
"""
_ACCEPT = "DROP TRIGGER IF EXISTS chaos_refuse ON chronicle.records"
_BUSY_WAIT_S = 3.0


@dataclass
class Fault:
    kind: str
    at: float  # the fraction of deliveries begun when it begins
    began_s: float | None = None  # seconds into the run; None: never injected
    note: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.note}" if self.note else self.kind


def plan(seed: int, kinds: Sequence[str] | None = None, count: int = 2) -> list[Fault]:
    """The run's faults: `kinds` in that order, or `count` kinds drawn by the seed, each
    at a fraction of the deliveries between 5 % and 60 %."""
    rng = random.Random(f"plan-{seed}")
    chosen = list(kinds) if kinds is not None else [rng.choice(KINDS) for _ in range(count)]
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    moments = sorted(rng.uniform(0.05, 0.6) for _ in chosen)
    return [Fault(kind, at) for kind, at in zip(chosen, moments, strict=True)]


@dataclass
class Target:
    """What the faults act on."""

    pods: Pods
    database: PostgresServer
    database_name: str
    proxy: TcpProxy


class Injector:
    def __init__(self, target: Target, seed: int) -> None:
        self.target = target
        self.rng = random.Random(f"inject-{seed}")
        self.actions: dict[str, Callable[[], str]] = {
            "kill-same": lambda: self.kill(same_folder=True),
            "kill-fresh": lambda: self.kill(same_folder=False),
            "db-restart": self.db_restart,
            "terminate": self.terminate,
            "cut": self.cut,
            "slow-db": self.slow_db,
            "answer-lost": self.answer_lost,
            "spool-full": self.spool_full,
            "ledger-refuses": self.ledger_refuses,
        }

    def inject(self, fault: Fault) -> None:
        fault.note = self.actions[fault.kind]()

    def kill(self, *, same_folder: bool) -> str:
        pods = self.target.pods
        victim, in_flight = self._busy_pod()
        if victim is None:
            return "no live pod to kill"
        pods.kill(victim)
        time.sleep(self.rng.uniform(0.2, 1.0))  # Knative notices and schedules a new pod
        successor = pods.restart(victim, same_folder=same_folder)
        where = "its folder" if same_folder else "a fresh folder"
        return f"SIGKILL {victim.name} ({in_flight} in flight), {successor.name} on {where}"

    def _busy_pod(self) -> tuple[Pod | None, int]:
        """A ready pod with requests in flight (waiting a little for one), or any."""
        deadline = time.monotonic() + _BUSY_WAIT_S
        while True:
            ready = self.target.pods.ready()
            busy = [pod for pod in ready if pod.in_flight > 0]
            if busy or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        choice = busy or ready
        if not choice:
            return None, 0
        victim = self.rng.choice(choice)
        return victim, victim.in_flight

    def db_restart(self) -> str:
        down = self.rng.uniform(1.0, 3.0)
        began = time.monotonic()
        self.target.database.crash()
        time.sleep(down)
        self.target.database.start()
        return f"down {time.monotonic() - began:.1f} s"

    def terminate(self) -> str:
        rounds, ended = self.rng.randint(1, 3), 0
        for _ in range(rounds):
            with self.target.database.connect() as conn:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND datname = %s",
                    (self.target.database_name,),
                ).fetchall()
            ended += sum(1 for (done,) in rows if done)
            time.sleep(self.rng.uniform(0.1, 0.5))
        return f"{ended} backends ended in {rounds} round(s)"

    def cut(self) -> str:
        rounds, cut = self.rng.randint(1, 3), 0
        for _ in range(rounds):
            cut += self.target.proxy.cut()
            time.sleep(self.rng.uniform(0.1, 0.5))
        return f"{cut} connections cut in {rounds} round(s)"

    def slow_db(self) -> str:
        latency = self.rng.choice((0.02, 0.05, 0.1))
        lasting = self.rng.uniform(1.5, 3.0)
        self.target.proxy.latency_s = latency
        try:
            time.sleep(lasting)
        finally:
            self.target.proxy.latency_s = 0.0
        return f"+{latency * 1000:.0f} ms a chunk each way for {lasting:.1f} s"

    def answer_lost(self) -> str:
        proxy = self.target.proxy
        lasting, cut, rounds = self.rng.uniform(2.0, 3.0), 0, 0
        ends = time.monotonic() + lasting
        proxy.latency_s = 0.05
        try:
            while time.monotonic() < ends:
                time.sleep(self.rng.uniform(0.2, 0.5))
                cut += proxy.cut()
                rounds += 1
        finally:
            proxy.latency_s = 0.0
        return f"+50 ms a chunk, {cut} connections cut in {rounds} rounds over {lasting:.1f} s"

    def spool_full(self) -> str:
        pods = self.target.pods
        filled = [(pod, pods.fill_spool(pod)) for pod in pods.ready()]
        down = self.rng.uniform(1.0, 2.5)
        try:
            self.target.database.crash()
            time.sleep(down)
            self.target.database.start()
            time.sleep(0.5)
        finally:
            for pod, _ in filled:
                pods.free_spool(pod)
        how = sorted({way for _, way in filled})
        return f"{len(filled)} spools full ({', '.join(how)}), database down {down:.1f} s"

    def ledger_refuses(self) -> str:
        pods, database = self.target.pods, self.target.database
        lasting = self.rng.uniform(1.0, 2.5)
        filled = [(pod, pods.fill_spool(pod)) for pod in pods.ready()]
        try:
            with database.connect(self.target.database_name) as conn:
                conn.execute(_REFUSE)
            time.sleep(lasting)
            victims = pods.ready()
            for pod in victims:
                pods.kill(pod)
        finally:
            with database.connect(self.target.database_name) as conn:
                conn.execute(_ACCEPT)
            for pod, _ in filled:
                pods.free_spool(pod)
        threads = [
            threading.Thread(target=pods.restart, args=(pod,), kwargs={"same_folder": True})
            for pod in victims
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        how = ", ".join(sorted({way for _, way in filled}))
        return (
            f"{len(filled)} spools full ({how}), ledger refusing {lasting:.1f} s, then"
            f" {len(victims)} pods SIGKILLed and started again"
        )
