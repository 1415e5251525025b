"""The management API on Flask (the only Flask importer): function listing, invoke, manifests,
OpenAPI and bearer auth. Built on the first request that needs it."""
