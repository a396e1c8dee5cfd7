"""Where the command lines write: a terminal, a file or a pipe, in whatever encoding, read to the end or not.

- Text the output's encoding cannot show is replaced (``?``), never a UnicodeEncodeError: a Windows console, or
  output redirected there, is cp1252, and the progress lines hold arrows and bars.
- A reader that leaves early (``generate.py | head -1``) stops the command as Ctrl-C would, and quietly: generation
  ends with exit code 0, training saves its step first (``--resume`` continues it) and exits with 130.
- Output that cannot be written (stdout on a full disk) is a one-line error on stderr, not a traceback.

It stands below ``errors`` (whose ``run_command`` attaches it) and imports nothing of the project.
"""
import contextlib
import errno
import os
import signal
import sys


class OutputFailed(Exception):
    """stdout cannot be written (a full disk): the command ends with this as its one-line error."""


class Output:
    """``sys.stdout`` or ``sys.stderr`` with the three rules above; everything else is the stream's own."""

    def __init__(self, stream, name: str):
        self.stream, self.name = stream, name
        self.reader_left = False        # the pipe was closed by its reader
        self.gone = False               # nothing more can be written: later output is dropped

    def write(self, text: str) -> int:
        if self.gone:
            return len(text)
        try:
            return self.stream.write(text)
        except UnicodeEncodeError:
            encoding = self.stream.encoding or "ascii"
            return self.write(text.encode(encoding, errors="replace").decode(encoding))
        except OSError as e:
            self.failed(e)
        return len(text)

    def flush(self) -> None:
        if self.gone:
            return
        try:
            self.stream.flush()
        except OSError as e:
            self.failed(e)

    def failed(self, e: OSError) -> None:
        self.gone = True
        self.drop_what_is_buffered()
        if e.errno == errno.EPIPE:
            self.reader_left = True
            signal.raise_signal(signal.SIGINT)          # the reader has what it wanted: stop as Ctrl-C does
        elif self.name == "stdout":                     # stderr cannot report its own failure: its output is dropped
            raise OutputFailed(f"cannot write the output to stdout: {e.strerror or e}") from None

    def drop_what_is_buffered(self) -> None:
        """Point the stream's file at the null device: what is still buffered then goes there, and the interpreter's
        own flush at exit has nothing left to fail on."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def attached():
    """``sys.stdout`` and ``sys.stderr`` follow the rules above while a command runs; yields the stdout."""
    before = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Output(sys.stdout, "stdout"), Output(sys.stderr, "stderr")
    try:
        yield sys.stdout
    finally:
        sys.stdout, sys.stderr = before
