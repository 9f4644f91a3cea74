"""Filters that LOGGING in settings attaches to loggers."""

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """On `django.request`: a 4xx keeps its line and loses the traceback; a 5xx keeps both.

    Django logs a PermissionDenied or Http404 raised in a view as a warning with the exception attached, so every
    expected refusal (a manager opening an edit page, an owner guessing another owner's id) printed a full traceback.
    A 4xx is the portal answering as designed: status and path say all there is to say."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
