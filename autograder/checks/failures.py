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


class PartialCredit(CheckFailed):
    """Not all the way: the check earns `credit` (a fraction) of its points, e.g. a model-quality
    check's half tier. It counts as failed: what is left of the points says why."""

    def __init__(self, credit: float, message: str, summary: str | None = None):
        super().__init__(message, summary)
        if not 0.0 < credit < 1.0:
            raise ValueError(f"partial credit must be between 0 and 1, got {credit}")
        self.credit = credit
