"""govfn's gunicorn worker: one asyncio loop per process speaking HTTP/1.1 itself (`wire`,
`chunked`, `connection`), handing receivers to the loop and the rest to WSGI (`handler`)."""
