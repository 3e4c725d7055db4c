"""Deployment statuses (ARCHITECTURE.md): ``QUEUED → BUILDING → DEPLOYING → ACTIVE``, ending in
``FAILED``, ``CRASHED``, ``CANCELLED`` or ``REMOVED``. Kept apart from ``streaming`` so commands
can use them without importing the WebSocket client."""

from __future__ import annotations

FINAL_STATUSES = frozenset({"FAILED", "CRASHED", "CANCELLED", "REMOVED"})
IN_PROGRESS_STATUSES = frozenset({"QUEUED", "BUILDING", "DEPLOYING"})
# `caboose up` is done once the new deployment serves traffic, or once it never will.
UP_DONE_STATUSES = FINAL_STATUSES | {"ACTIVE"}
# Following a build is done once the deployment has moved past it.
AFTER_BUILD_STATUSES = FINAL_STATUSES | {"DEPLOYING", "ACTIVE"}
