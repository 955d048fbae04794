"""The event source as a functions-framework HTTP function: ``KNEVENTS_SPEC`` names the EventSource.

Two targets, same behaviour (the pipeline is :mod:`knevents.runtime.source`):

* ``handle`` — synchronous (Flask under gunicorn threads); requests are handed
  to one background event loop::

      functions-framework --source functions/eventsource/main.py --target handle

* ``handle_async`` — ASGI (Starlette under uvicorn), no thread hop::

      functions-framework --source functions/eventsource/main.py --target handle_async --asgi

Events go to ``$K_SINK`` when set (Knative SinkBinding / broker), else to
JetStream at ``KNEVENTS_NATS_URL``. Every push event is served on ``$PORT``
(the spec's ``port`` matters only standalone). Pull sources (nats, calendar
``interval``) start with the process. ``/health`` and ``/metrics`` are answered.
This file converts requests and responses; it holds no logic.
"""

from __future__ import annotations

from typing import Any

import functions_framework
from knevents import web
from knevents.runtime import source_app

_app = source_app.SourceApp.from_env()
_app.start_pull()


@functions_framework.http
def handle(request: Any) -> Any:
    """Synchronous (WSGI) target."""
    try:  # the body is read up to the limit only: a larger one is a 413 before it is buffered
        answer = _app.background.run(_app.handle(web.from_wsgi(request, _app.max_body)))
    except web.BodyTooLarge as exc:
        answer = exc.response
    return answer.body, answer.status, dict(answer.headers)


async def handle_async(request: Any) -> Any:
    """Asynchronous (ASGI) target: run with ``--asgi``."""
    from starlette.responses import Response

    try:
        answer = await _app.handle(await web.from_asgi(request, _app.max_body))
    except web.BodyTooLarge as exc:
        answer = exc.response
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


eventsource = handle
"""Alias of the synchronous target."""
