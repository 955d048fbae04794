"""Imported at start by the processes ``bench/profile.py --calls`` measures (this folder is put on PYTHONPATH).

With ``BENCH_CALLS_DIR=<dir>`` set, SIGUSR1 starts a ``cProfile`` profiler on the main
thread (where the runner's and the functions' event loops run) and SIGUSR2 stops it and
writes its statistics to ``<dir>/<pid>.pstats``. The counts, not the times, are what the
benchmark reads: Python function calls per event, a measure of the code's work that the
machine's load does not move. Nothing happens without the variable.
"""

import os

_DIR = os.environ.get("BENCH_CALLS_DIR")

if _DIR:
    import cProfile
    import signal

    _profiler = cProfile.Profile()

    def _start(*_):  # type: ignore[no-untyped-def]
        _profiler.enable()

    def _stop(*_):  # type: ignore[no-untyped-def]
        _profiler.disable()
        _profiler.dump_stats(os.path.join(_DIR, f"{os.getpid()}.pstats"))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
