"""The one error type a user sees: a clear one-line message and exit code 2, never a traceback."""


class UserError(Exception):
    """Bad input (config, file, flag, prompt, checkpoint) that the user can fix.

    The command lines catch it, print ``error: <message>`` on one line and exit with code 2.
    """

    exit_code = 2
