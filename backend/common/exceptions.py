"""Errors the backend answers beyond DRF's own.

APIException (DRF)
 +-- PreconditionFailed   412: If-Match named a version that is no longer current
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException


class PreconditionFailed(APIException):
    """412 with the row's current version, so the caller can re-read and retry."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object was changed by someone else: its version no longer matches."
    default_code = "precondition_failed"

    def __init__(self, current_version: int) -> None:
        super().__init__()
        self.detail = {"detail": self.default_detail, "current_version": current_version}
