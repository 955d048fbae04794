"""The sensor as a functions-framework HTTP function: ``KNEVENTS_SPEC`` names the Sensor.

Two targets, same behaviour (the pipeline is :mod:`knevents.runtime.sensor`):

* ``sensor`` — synchronous (Flask under gunicorn threads); each request is
  handed to one background event loop thread::

      functions-framework --source functions/sensor/main.py --target sensor

* ``sensor_async`` — ASGI (Starlette under uvicorn); requests run on the
  server's own event loop, no thread hop. Faster; see docs/sensor-runtime.md::

      functions-framework --source functions/sensor/main.py --target sensor_async --asgi

The *http* signature (not *cloudevent*) is used so the function chooses the
status code: 2xx done, 5xx/429 retry, 400 malformed (Knative's delivery
contract). ``/health`` and ``/metrics`` are answered too. This file only
converts requests and responses; it holds no logic.
"""

from __future__ import annotations

from typing import Any

import functions_framework
from knevents import web
from knevents.runtime import sensor_app

_app = sensor_app.SensorApp.from_env()
_loop = sensor_app.LoopThread()


@functions_framework.http
def sensor(request: Any) -> Any:
    """Synchronous (WSGI) target."""
    try:  # the body is read up to the limit only: a larger one is a 413 before it is buffered
        answer = _loop.run(_app.handle(web.from_wsgi(request, _app.max_body)))
    except web.BodyTooLarge as exc:
        answer = exc.response
    return answer.body, answer.status, dict(answer.headers)


async def sensor_async(request: Any) -> Any:
    """Asynchronous (ASGI) target: run with ``--asgi``."""
    from starlette.responses import Response

    try:
        answer = await _app.handle(await web.from_asgi(request, _app.max_body))
    except web.BodyTooLarge as exc:
        answer = exc.response
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


handle = sensor
"""Alias of the synchronous target (``--target handle``), the name the benchmark harness uses."""
