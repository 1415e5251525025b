"""The CloudEvent echo function on functions-framework 3.10, served through its own CLI.

    functions-framework --source benchmarks/peers/ff_echo.py --target echo \
        --signature-type cloudevent --host 127.0.0.1 --port P      (WORKERS=1 THREADS=8)

functions-framework discards what a `@cloud_event` function returns and answers 200 "OK";
the function still builds the reply data, as an echo would.
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.cloud_event
def echo(cloud_event: Any) -> Any:
    return cloud_event.get_data()
