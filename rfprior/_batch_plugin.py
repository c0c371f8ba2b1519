"""The worker plugin of :func:`rfprior.batch`'s own ``LocalCluster`` (imports ``distributed``)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from distributed import WorkerPlugin

__all__ = ["IgnoreSigint"]


class IgnoreSigint(WorkerPlugin):
    """Workers of the batch's own ``LocalCluster`` ignore Ctrl-C's SIGINT.

    A terminal's Ctrl-C reaches every process of the foreground group, the worker
    processes included. The client alone decides how a batch stops (it sets the stop
    event; running fits save their interrupted results), so a worker must not die of it.
    Not installed on a cluster the user brings (its workers are not in the terminal's group).
    """

    name = "rfprior-ignore-sigint"

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
