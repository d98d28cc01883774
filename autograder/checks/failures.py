"""The verdicts a check can reach besides passing."""


class CheckFailed(Exception):
    """The student's code ran, but what it returned is wrong.

    `message` may show values (inputs, expected, got): it is for public checks
    and for instructors. `summary` says what went wrong without any value, so
    it is safe to show for hidden checks.
    """

    def __init__(self, message: str, summary: str | None = None):
        super().__init__(message)
        self.message = message
        self.summary = summary if summary is not None else message.splitlines()[0]
