"""A correlation id from the request (or task) that queues a Celery task to the task's log lines.

When a task is published, the current request id (or, inside a task, that task's correlation id) goes into the
message's headers; when a worker runs the task, it binds the id, with the task's name and id, into the log context
of every line the task writes. A task queued outside any request or task (beat, the shell) gets a new id.

Celery would also replace the logging configuration in the worker; `setup_logging` having a receiver tells it to
keep Django's (settings.LOGGING), so the worker writes the same structured lines.
"""

import uuid

import structlog
from celery import signals

# Not "correlation_id": Celery already uses that name, for the task id, in every message.
HEADER = "nhi_correlation_id"


@signals.before_task_publish.connect(weak=False)
def _add_correlation_id(headers=None, **kwargs) -> None:
    if headers is not None:
        headers.setdefault(HEADER, current_correlation_id())


def current_correlation_id() -> str:
    context = structlog.contextvars.get_contextvars()
    return context.get("correlation_id") or context.get("request_id") or uuid.uuid4().hex


# Per task id, the context the task's binding replaced: a task run eagerly (inside a request) hands the request its
# own context back when it ends.
_replaced: dict[str, dict] = {}


@signals.task_prerun.connect(weak=False)
def _bind_task_context(task_id=None, task=None, **kwargs) -> None:
    correlation_id = getattr(task.request, HEADER, None) if task is not None else None
    if not correlation_id:  # run eagerly, no message: the caller's context is the one to follow
        context = structlog.contextvars.get_contextvars()
        correlation_id = context.get("correlation_id") or context.get("request_id")
    _replaced[task_id] = structlog.contextvars.bind_contextvars(
        correlation_id=correlation_id or uuid.uuid4().hex,
        task=getattr(task, "name", None),
        task_id=task_id,
    )


@signals.task_postrun.connect(weak=False)
def _unbind_task_context(task_id=None, **kwargs) -> None:
    tokens = _replaced.pop(task_id, None)
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)


@signals.setup_logging.connect(weak=False)
def _keep_django_logging(**kwargs) -> None:
    """Django has configured logging from settings.LOGGING by the time the worker starts; keep it."""
