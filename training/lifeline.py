"""A trainer started by another program (the page's server) stops when that program ends, however it ends.

``train.py --stop-with PID``: a thread looks every half second whether process PID is still this trainer's parent.
When it is not (the server was killed, even with SIGKILL, and the trainer was handed to another parent), the
trainer stops as Ctrl-C stops it: it saves its step and exits, and ``--resume`` continues it. A run started from
the page never trains on alone, unseen, holding its folder and a CPU.
"""
import os
import signal
import threading
import time

PERIOD_S = 0.5


def stop_with(parent: int) -> None:
    """Stop this process (as Ctrl-C would) once ``parent`` is no longer its parent."""
    def look():
        while os.getppid() == parent:
            time.sleep(PERIOD_S)
        signal.raise_signal(signal.SIGINT)

    threading.Thread(target=look, name="lifeline", daemon=True).start()
