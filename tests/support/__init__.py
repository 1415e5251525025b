"""Shared test helpers and doubles (imported as `support.*`: tests/ is on sys.path)."""
