"""`t`, the one argument of every check: the student's code, the reference,
seeded inputs, and the assertions, with the machinery kept out of sight."""

from __future__ import annotations

import torch

from autograder.checks import compare, gradients, timing
from autograder.checks.failures import CheckFailed
from autograder.checks.tape import ReferenceProxy, Tape


class Trial:
    def __init__(self, session, reference: ReferenceProxy, tape: Tape, seed: int, device: str = "cpu", pacer=None):
        self.session = session
        self.student = session.student
        self.reference = reference
        self.tape = tape
        self.generator = torch.Generator().manual_seed(seed)
        self.device = device  # inputs are drawn on the CPU and placed here
        self.pacer = pacer  # a session of the reference solution in its own worker (timed checks)
        self.races: list[timing.Race] = []  # what expect_fast measured, for benchmarks and reports

    # --- inputs (recorded in public bundles, so a replay sees the same ones) ---

    def randn(self, *shape: int, dtype: torch.dtype = torch.float64, scale: float = 1.0, away_from_zero: float = 0.0):
        """Normal samples; with away_from_zero=m every |x| >= m, keeping inputs off a kink at 0."""
        spec = {"fn": "randn", "shape": list(shape), "dtype": str(dtype), "scale": scale, "away": away_from_zero}

        def produce():
            x = torch.randn(shape, generator=self.generator, dtype=torch.float64) * scale
            if away_from_zero:
                x = torch.where(x >= 0, x + away_from_zero, x - away_from_zero)
            return x.to(dtype=dtype, device=self.device)

        return self.tape.draw("input", spec, produce)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0, dtype: torch.dtype = torch.float64):
        spec = {"fn": "uniform", "shape": list(shape), "dtype": str(dtype), "low": low, "high": high}
        u = lambda: torch.rand(shape, generator=self.generator, dtype=torch.float64)  # noqa: E731
        produce = lambda: (low + (high - low) * u()).to(dtype=dtype, device=self.device)  # noqa: E731
        return self.tape.draw("input", spec, produce)

    def randint(self, low: int, high: int, *shape: int):
        spec = {"fn": "randint", "shape": list(shape), "low": low, "high": high}
        produce = lambda: torch.randint(low, high, shape, generator=self.generator).to(self.device)  # noqa: E731
        return self.tape.draw("input", spec, produce)

    # --- the student's process ---

    @property
    def last_call(self) -> str:
        return self.session.last_call

    def fixture(self, name: str):
        """A trusted helper layer (autograder.protocol.fixtures) built inside the worker."""
        return self.session.fixture(name)

    def put(self, value):
        """Place value in the student's process and get a handle to it (to see in-place changes)."""
        return self.session.put(value)

    def fetch(self, handle):
        return self.session.fetch(handle)

    # --- assertions ---

    def expect_close(self, actual, expected, *, what: str | None = None, dtype=None, rtol=None, atol=None):
        compare.expect_close(actual, expected, what=what or self.last_call, dtype=dtype, rtol=rtol, atol=atol)

    def expect_equal(self, actual, expected, *, what: str | None = None):
        compare.expect_equal(actual, expected, what=what or self.last_call)

    def expect(self, condition: bool, message: str, summary: str | None = None):
        """A property check; give a value-free summary when message shows values (hidden checks show it)."""
        if not condition:
            raise CheckFailed(message, summary)

    def expect_sequence(self, value, kind: type, length: int, *, what: str):
        """value must be a kind (list or tuple) of length items; the message names types and shapes only,
        since a malformed result could otherwise carry hidden inputs back to the student."""
        if not (type(value) is kind and len(value) == length):
            raise CheckFailed(f"{what} must be a {kind.__name__} of {length}, got {compare.describe(value)}")
        return value

    def expect_finite(self, actual, *, what: str | None = None):
        what = what or self.last_call
        tensor = compare.expect_tensor(actual, what=what)
        bad = ~torch.isfinite(tensor)
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            raise CheckFailed(
                f"{what}: {int(bad.sum())} of {tensor.numel()} values are not finite, "
                f"e.g. {tensor[index].item()} at index {index}",
                f"{what}: {int(bad.sum())} of {tensor.numel()} values are not finite",
            )

    def gradcheck(self, forward, inputs: dict, backward, *, what: str | None = None):
        """Finite differences of forward(**inputs) against backward(upstream) -> {name: gradient}.

        backward is called once, right after forward at the unperturbed inputs,
        with a random upstream gradient shaped like the output.
        """
        output = compare.expect_tensor(forward(**inputs), what=self.last_call)
        what = what or f"backward of {self.last_call}"
        upstream = self.randn(*output.shape)
        analytic = backward(upstream)
        gradients.check_gradients(
            forward, inputs, analytic, upstream, what=what, random_direction=lambda shape: self.randn(*shape)
        )

    def expect_fast(
        self, timed, inputs, prepare=None, *, what: str, threshold: float = timing.THRESHOLD,
        repetitions: int = timing.REPETITIONS,
    ):
        """timed(**prepare(code, **inputs())) must take at most threshold times the reference's time.

        inputs() draws one fresh input set. prepare and timed are recorded as a program
        (protocol/plan.py: they may only read, set and call attributes of the code and the
        inputs) that each request runs `repetitions` times on fresh input sets, set-up
        included. Student and reference race in their own processes (see checks/timing.py);
        every repetition's results must also agree.
        """
        if self.pacer is None:
            raise RuntimeError("a timed check needs the reference solution running in a worker")

        def verify_one(got, expected):
            if isinstance(expected, (tuple, list)):
                self.expect_sequence(got, type(expected), len(expected), what=f"the result of {what} (timed)")
                for number, (item, expected_item) in enumerate(zip(got, expected), start=1):
                    self.expect_close(item, expected_item, what=f"{what} (timed), result #{number}")
            else:
                self.expect_close(got, expected, what=f"{what} (timed)")

        def verify(got, expected):
            self.expect_sequence(got, list, len(expected), what=f"the results of one timed request of {what}")
            for got_one, expected_one in zip(got, expected):
                verify_one(got_one, expected_one)

        try:
            race = timing.run_race(
                self.session, self.pacer, prepare, timed, inputs, verify, repetitions=repetitions,
                threshold=threshold, cpu_clock=self.device == "cpu", what=what,
            )
        except timing.TooSlow as stopped:
            raise CheckFailed(str(stopped), str(stopped)) from None
        self.races.append(race)
        if race.ratio > threshold:
            text = f"{what} is too slow: {race.describe(threshold)}"
            raise CheckFailed(text, text)

    def expect_inputs_kept(self, method, *inputs: torch.Tensor, what: str | None = None):
        """Call method(*inputs) with the inputs living in the student's process; they must not change."""
        handles = [self.put(x) for x in inputs]
        result = method(*handles)
        what = what or self.last_call
        for position, (handle, original) in enumerate(zip(handles, inputs)):
            after = self.fetch(handle)
            if not (after.shape == original.shape and torch.equal(after, original)):
                raise CheckFailed(
                    f"{what} modified its input #{position + 1} in place (units must not change their inputs); "
                    f"before: {original.flatten()[:6].tolist()}, after: {after.flatten()[:6].tolist()}",
                    f"{what} modified its input #{position + 1} in place",
                )
        return result
