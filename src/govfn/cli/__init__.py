"""The `govfn` command line.

`govfn serve` runs in every pod as it scales from zero, so it goes straight to its own
argparse parser (`govfn.cli.serve`); every other command goes through the click group in
`govfn.cli.group`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        # Start-up only builds what lives as long as the process: no cyclic collection
        # runs until the arbiter is ready and each worker has frozen what it inherited.
        gc.disable()
        from govfn.cli.serve import main as serve

        serve(arguments[1:])
        return
    from govfn.cli.group import cli

    cli(arguments)
