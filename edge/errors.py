"""The one exception root of edge: every failure a user can act on is an EdgeError.

Its message is one line that says what is wrong and what to do; the CLI prints it as
`edge: <message>` and exits non-zero (edge/tasks/common.py is the one place that catches it).
"""


class EdgeError(Exception):
    """A failure the user can act on; the message is one line."""

    exit_code = 1
