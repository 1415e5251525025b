"""Fault injection on real processes: billing pods (`govfn serve`) on one real PostgreSQL,
a Knative broker's deliveries and retries, and the faults of `faults.KINDS` injected while
they run; `scenario.run` checks what govfn promises afterwards. `tests/reliability/
test_faults.py` runs one short scenario per fault kind (make test); `python -m
support.chaos` (make chaos) runs many seeded ones and prints a table."""
