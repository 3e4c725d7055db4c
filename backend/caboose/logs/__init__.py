"""Logs: the store (Redis Streams + archive), redaction, the shipper, events, live fan-out.

Plain Python and ``redis.asyncio``: nothing here imports the web framework, so the pipeline's
Celery tasks use it as directly as the API does.
"""

from caboose.logs.entries import STREAMS, LogEntry, LogLine
from caboose.logs.events import deployment_event, publish_event, service_event
from caboose.logs.redaction import Redactor
from caboose.logs.shipper import LogFile, LogShipper, start_shipping, stop_shipping
from caboose.logs.store import LogPage, LogStore
from caboose.logs.writer import LogWriter

__all__ = [
    "STREAMS",
    "LogEntry",
    "LogFile",
    "LogLine",
    "LogPage",
    "LogShipper",
    "LogStore",
    "LogWriter",
    "Redactor",
    "deployment_event",
    "publish_event",
    "service_event",
    "start_shipping",
    "stop_shipping",
]
