"""The one error type a user sees: a clear one-line message and exit code 2, never a traceback."""
import os
import sys


class UserError(Exception):
    """Bad input (config, file, flag, prompt, checkpoint) that the user can fix.

    The command lines catch it, print ``error: <message>`` on one line and exit with code 2.
    """

    exit_code = 2


def run_command(command) -> int:
    """The exit code of ``command()`` as every command line reports it: 0 (or what it returns) on success,
    ``error: <message>`` on stderr and 2 for bad input, 130 for Ctrl-C."""
    try:
        return command() or 0
    except UserError as e:
        if os.environ.get("RANK", "0") == "0":      # under torchrun every process meets the same input: say it once
            print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
