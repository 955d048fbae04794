"""The baseline: functions-framework functions that do nothing."""

import functions_framework


@functions_framework.http
def noop_http(request):  # type: ignore[no-untyped-def]
    return ""


@functions_framework.cloud_event
def noop_cloudevent(event):  # type: ignore[no-untyped-def]
    return None
