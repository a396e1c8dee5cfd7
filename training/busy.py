"""A busy machine: when other programs hold the CPU cores, every training step waits for them, and a run that takes
two minutes on an idle laptop can take half an hour. The trainer notices and says, once, how to make it faster.

The kernel counts, for each thread, the time it ran and the time it was ready to run but waited for a core
(``/proc/self/task/<id>/schedstat`` on Linux). While a run trains, a watcher thread compares the two every
``WINDOW_S`` seconds. When the trainer's threads spent ``WAITED_SHARE`` of their time or more waiting for a core,
its steps are that much slower than this CPU allows, and with several threads it is worse than that share says: a
parallel kernel waits for its slowest thread, so one thread that lost its core stalls the others. Fewer threads than
cores (``train.threads=1``) then often trains faster (measurements: docs/speed-log.md).
"""
import contextlib
import os
import threading

WINDOW_S = 10.0         # seconds of training between two looks
WAITED_SHARE = 0.3      # waiting for a core this share of the time (or more) is a busy machine


def cpu_seconds() -> tuple[float, float] | None:
    """(seconds run, seconds waited for a core) by this process's threads so far, or None where the system does not
    count them (not Linux)."""
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return None
    ran = waited = 0
    for thread in threads:
        try:
            with open(f"/proc/self/task/{thread}/schedstat") as f:
                run_ns, wait_ns = f.read().split()[:2]
        except (OSError, ValueError):          # a thread that just ended, or a kernel without schedstat
            continue
        ran, waited = ran + int(run_ns), waited + int(wait_ns)
    return ran / 1e9, waited / 1e9


def advice(ran: float, waited: float, threads: int, seconds: float) -> str | None:
    """What to say after ``seconds`` of training in which the threads ran ``ran`` and waited ``waited`` seconds for
    a core, or None when that is not a busy machine."""
    if ran + waited <= 0 or waited / (ran + waited) < WAITED_SHARE:
        return None
    load = f"; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    said = (f"note: this machine is busy: training waited for a CPU core {waited / (ran + waited):.0%} of the last "
            f"{seconds:.0f} s ({threads} threads{load})")
    if threads > 1:
        return (said + "; fewer threads than cores is often much faster then: --set train.threads=1 "
                       '(make demo ARGS="--set train.threads=1")')
    return said + "; steps are slower until the other programs finish"


@contextlib.contextmanager
def watch(threads: int, say, window_s: float = WINDOW_S):
    """While the block runs, look every ``window_s`` seconds and ``say`` the advice once, if there is any."""
    if cpu_seconds() is None:
        yield
        return
    stop = threading.Event()

    def look():
        before = cpu_seconds()
        while not stop.wait(window_s):
            now = cpu_seconds()
            ran, waited = max(0.0, now[0] - before[0]), max(0.0, now[1] - before[1])
            message = advice(ran, waited, threads, window_s)
            if message:
                say(message)
                return
            before = now

    looking = threading.Thread(target=look, name="busy-machine", daemon=True)
    looking.start()
    try:
        yield
    finally:
        stop.set()
        looking.join()
