"""The webhook task: a verified delivery, parsed by the API, acted on here.

| task | queue | what |
| --- | --- | --- |
| ``webhooks.deliver`` | default | a push → a deployment (or a skip); a pull request → its preview |

The API answers the provider at once (202) and sends this task with the webhook's id and the
small parsed event (``webhooks.payloads``), never the provider's whole body.
"""

from __future__ import annotations

import dataclasses
import json

from caboose.celery_app import task
from caboose.tasks.base import TRANSIENT_ERRORS, DatabaseTask, run_async
from caboose.tasks.deployments import worker_context
from caboose.webhooks.processing import DELIVER_TASK, process_delivery

__all__ = ["deliver"]


_LOCK_WAIT_S = 200.0


@task(DELIVER_TASK, base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
def deliver(webhook_id: str, event_json: str) -> str:
    async def main() -> str:
        async with worker_context() as ctx:
            # Within the default queue's time limit even when a deploy holds the lock a
            # preview's removal needs (it is retried then).
            ctx = dataclasses.replace(ctx, deploy_lock_wait_s=_LOCK_WAIT_S)
            outcome = await process_delivery(ctx, webhook_id, json.loads(event_json))
            return outcome.status

    return run_async(main())
