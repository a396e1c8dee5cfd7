"""The one error type a user sees: a clear one-line message and exit code 2, never a traceback."""
import os
import sys
import time

from console import OutputFailed, attached

# How long a torchrun process other than rank 0 waits, after bad input, for torchrun to stop it.
OTHER_RANKS_WAIT_S = 10.0


class UserError(Exception):
    """Bad input (config, file, flag, prompt, checkpoint) that the user can fix.

    The command lines catch it, print ``error: <message>`` on one line and exit with code 2.
    """

    exit_code = 2


def say_once(e: UserError) -> None:
    """Print ``error: <message>`` once, also under torchrun, where every process meets the same bad input.

    Rank 0 says it. torchrun stops all processes as soon as one exits, so the others wait: had one of them exited
    first, rank 0 could be stopped before its line was printed. A process still running after the wait met an
    error rank 0 did not, and says it with its rank.
    """
    rank = os.environ.get("RANK", "0")
    if rank == "0":
        print(f"error: {e}", file=sys.stderr)
        return
    time.sleep(OTHER_RANKS_WAIT_S)
    print(f"error: (rank {rank}) {e}", file=sys.stderr)


def run_command(command) -> int:
    """The exit code of ``command()`` as every command line reports it: 0 (or what it returns) on success,
    ``error: <message>`` on stderr and 2 for bad input, 130 for Ctrl-C. Its output follows ``console``'s rules:
    any encoding, a reader that leaves early stops it quietly, a full disk under stdout is a one-line error."""
    with attached() as out:
        try:
            code = command() or 0
            sys.stdout.flush()                  # a full disk shows here, while it can still be reported
            return code
        except UserError as e:
            say_once(e)
            return e.exit_code
        except OutputFailed as e:
            say_once(e)
            return UserError.exit_code
        except KeyboardInterrupt:
            if out.reader_left:                 # stopped because the reader left (``| head``): nothing to say
                return 0
            print(file=sys.stderr)
            return 130

