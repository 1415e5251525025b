"""Benchmarks for govfn: `make bench` runs them and writes the report (benchmarks/README.md).

    python -m benchmarks.prepare    peer venvs under .bench/venvs/ and the wrk load generator
    python -m benchmarks.invoke     in-process FunctionRuntime.invoke() cost, ledger on and off
    python -m benchmarks.http       wrk load on govfn serve and the peers, a fresh server per round
    python -m benchmarks.coldstart  spawn -> first 2xx answer to a CloudEvent POST
    python -m benchmarks.report     the Markdown table; --write-readme puts it into a README
    python -m benchmarks.profile    py-spy profile of govfn serve's receiver under wrk load

Results are JSON files under .bench/results/. Benchmarks measure; they never assert on speed.
Every server listens on 127.0.0.1 only and is stopped by the PID this suite started.
"""
