"""Fault injection for the crash tests: the process SIGKILLs itself at a named point, as a power cut would.

A kill at a random moment rarely lands inside a checkpoint write, so the tests name the moment instead:
``GPT_PLAYGROUND_KILL_AT=<point>:<n>`` kills the process the n-th time it reaches ``<point>``:

    step            an optimizer step is done and its metrics line written; nothing evaluated or saved yet
    eval            one split of an evaluation is measured (twice per evaluation: train, then val)
    write:<file>    the temp file for <file> (e.g. last.pt) is written but not yet renamed over it
    greedy token    a batch of greedy continuations has one more token (``inference.greedy_texts``)

SIGKILL cannot be caught: no ``finally``, no cleanup, exactly what an out-of-memory killer does. A third part names
another signal instead, ``<point>:<n>:SIGINT``: a Ctrl-C that lands exactly there, however fast the work around it.
Unset, as it always is outside the tests, ``kill_point`` does nothing.
"""
import os
import signal

ENV = "GPT_PLAYGROUND_KILL_AT"
_reached: dict[str, int] = {}


def kill_point(name: str) -> None:
    target = os.environ.get(ENV)
    if not target:
        return
    _reached[name] = _reached.get(name, 0) + 1
    rest, _, how = target.rpartition(":")                 # "<point>:<n>:SIGINT", or "<point>:<n>" for SIGKILL
    if not how.startswith("SIG"):
        rest, how = target, "SIGKILL"
    point, _, n = rest.rpartition(":")
    if point == name and n == str(_reached[name]):
        os.kill(os.getpid(), getattr(signal, how, signal.SIGTERM))    # Windows has no SIGKILL: TerminateProcess
