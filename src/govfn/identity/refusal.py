"""`SenderRefused`, apart from the verifier, so that the receivers catch it without loading
PyJWT (which loads only when sender verification is on)."""

from __future__ import annotations


class SenderRefused(Exception):
    """Why a delivery is refused: `status` 401, 403 or 503, and what is wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
