"""`t`, the one argument of every check: the student's code, the reference,
seeded inputs, and the assertions, with the machinery kept out of sight."""

from __future__ import annotations

import torch

from autograder.checks import compare, gradients, quality, timing
from autograder.checks.failures import CheckFailed
from autograder.checks.tape import ReferenceProxy, Tape
from autograder.protocol import plan

# Batched evaluations (Trial._batched): bounds of one request; past one, the next sets go in the next request.
BATCH_SETS = 128  # argument sets: a 64-element input's finite differences, both ways, in one request
BATCH_TENSORS = 1024  # tensors sent, and outputs expected back (a frame may list 4,096)
BATCH_BYTES = 32 << 20  # bytes of those tensors (a frame may hold 256 MiB)


class Trial:
    def __init__(self, session, reference: ReferenceProxy, tape: Tape, seed: int, device: str = "cpu", pacer=None):
        self.session = session
        self.student = session.student
        self.reference = reference
        self.tape = tape
        self.seed = seed  # the input seed: a hidden check's depends on the student (checks/seeds.py)
        self.generator = torch.Generator().manual_seed(seed)
        self.notes: list[str] = []  # what a passed check has to say (a model's score), value-free
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

    def put_all(self, values: list) -> list:
        """put each value, in one round trip."""
        return self.session.put_all(values)

    def fetch_all(self, handles: list) -> list:
        """fetch each handle, in one round trip."""
        return self.session.fetch_all(handles)

    def fetching(self, handles: list):
        """`with t.fetching(handles) as after:` the calls inside bring the handles' values back with
        their answers; pass `after` to expect_unchanged (no fetch of its own)."""
        return self.session.fetching(handles)

    # --- assertions ---

    def expect_close(self, actual, expected, *, what: str | None = None, dtype=None, rtol=None, atol=None, hint=None, sources=None):
        """compare.expect_close; hint (no values: hidden checks show it too) is added to a failure."""
        try:
            compare.expect_close(actual, expected, what=what or self.last_call, dtype=dtype, rtol=rtol, atol=atol, sources=sources)
        except CheckFailed as failure:
            if hint is None:
                raise
            raise CheckFailed(f"{failure.message}\n{hint}", f"{failure.summary}; {hint}") from None

    def expect_equal(self, actual, expected, *, what: str | None = None):
        compare.expect_equal(actual, expected, what=what or self.last_call)

    def expect(self, condition: bool, message: str, summary: str | None = None):
        """A property check; give a value-free summary when message shows values (hidden checks show it)."""
        if not condition:
            raise CheckFailed(message, summary)

    def note(self, text: str):
        """Say something about a check that passes (shown with it, hidden checks included: no values)."""
        self.notes.append(text)

    def train_and_score(self, train, task: quality.Task, *, budget_s: float, full: float, half: float, **options):
        """The student's train(...) on task's data within budget_s CPU seconds; its model's predictions
        on held-out data scored against the tiers full and half (checks/quality.py)."""
        return quality.train_and_score(self, train, task, budget_s=budget_s, full=full, half=half, **options)

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

    def gradcheck(self, forward, inputs: dict, backward, *, reference=None, what: str | None = None):
        """The student's backward(upstream) -> {name: gradient} for forward(**inputs), judged so that
        a forward that changes with what ran before it cannot pass.

        reference: (forward, backward) of the reference's unit, called the same way (through
        t.reference, so a public check's replay has them too). Then the student's forward output
        must match the reference's, and each gradient the reference's. Without one (the student's
        own formula) central differences of the student's forward alone judge backward.

        In order: forward at the inputs (against the reference's), again (the same output),
        finite differences of forward, forward at the inputs again (the same output; backward then
        sees the forward of these inputs last), backward with a random upstream gradient, forward
        once more (the same output as before backward ran), the gradients against the reference's,
        then against the finite differences. The differences are taken before backward ever runs.
        """
        output = compare.expect_tensor(forward(**inputs), what=self.last_call)
        call = self.last_call
        what = what or f"backward of {call}"
        expected = None
        if reference is not None:
            reference_forward, reference_backward = reference
            expected = reference_forward(**inputs)
            self.expect_close(output, expected, what=f"{call} (the forward pass this gradient check differentiates)",
                              sources=("the reference's forward", "your forward"))
        self._expect_same_output(forward, inputs, output, call, "a second time on the same inputs")
        upstream = self.randn(*(expected if expected is not None else output).shape)
        numeric = gradients.finite_differences(
            forward, inputs, upstream, what=call, random_direction=lambda shape: self.randn(*shape),
            evaluate=self._batched(forward, inputs, upstream.shape),
        )
        self._expect_same_output(forward, inputs, output, call, "at the same inputs after the finite differences")
        analytic = backward(upstream)
        self._expect_same_output(forward, inputs, output, call, "at the same inputs after backward ran")
        if reference is not None:
            expected_gradients = reference_backward(upstream)
            for name, point in inputs.items():
                gradient = analytic.get(name)
                gradients.expect_gradient(gradient, point.shape, name=name, what=what)
                self.expect_close(
                    gradient, expected_gradients[name],
                    what=f"{what}: gradient wrt {name}, your backward's against the reference's",
                    sources=("the reference's backward", "your backward"),
                )
        gradients.expect_matches_differences(analytic, numeric, what=what)

    def _batched(self, forward, inputs: dict, shape: torch.Size):
        """forward's evaluations for finite_differences, in one request per batch of argument sets
        (plan.Calls: the same calls in the same order, each on fresh copies of its arguments); None
        (call by call) where forward does more than set attributes of the student's objects and
        call them, or the student's code runs in this process. The student's process stops after an
        output that is not a float64 tensor of this shape: finite_differences stops there too.
        Recording runs forward once on stand-ins for the inputs: what it does on the grader's side
        (drawing inputs, counting its calls) happens once, not once per evaluation."""
        record = getattr(self.session, "record_calls", None)
        if record is None:
            return None
        try:
            calls = record(forward, inputs)
        except plan.PlanError:
            return None
        expect = {"dtype": "float64", "shape": list(shape)}
        returned = (1, shape.numel() * torch.float64.itemsize)  # what one output weighs (see _batches)

        def evaluate(argument_sets):
            cost = lambda arguments: _tensors(calls.input_set(arguments), returned)  # noqa: E731
            for batch in _batches(argument_sets, cost):
                while batch:  # until every set of it has its output (the process stops after an odd one)
                    results, raw, error = self.session.run_calls(calls, batch, expect=expect)
                    for number, result in enumerate(results, start=1):
                        yield calls.index(result) if raw and number == len(results) else result
                    del batch[: len(results)]
                    if error is not None:
                        raise error

        return evaluate

    def _expect_same_output(self, forward, inputs: dict, first: torch.Tensor, call: str, when: str):
        """forward(**inputs) called again must give its first output: a forward pass depends on its
        inputs and parameters only, not on what ran before it (backward, say)."""
        again = forward(**inputs)
        finite = first.detach()[torch.isfinite(first.detach())]
        largest = finite.abs().max().item() if finite.numel() else 0.0
        # Same computation, same process: only the last bits may differ (a kernel's memory alignment).
        compare.expect_close(
            again, first, rtol=1e-10, atol=1e-10 * max(1.0, largest),
            what=f"{call}, called {when}, returned other values than the first time "
            "(a forward pass must depend only on its inputs and parameters; expected: its first output)",
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
        handles = self.put_all(list(inputs))
        with self.fetching(handles) as after:
            result = method(*handles)
        names = [f"input #{position}" for position in range(1, len(inputs) + 1)]
        self.expect_unchanged(
            handles, inputs, names, what=what or self.last_call, rule="units must not change their inputs", after=after
        )
        return result

    def expect_unchanged(self, handles, originals, names, *, what: str, rule: str, after=None):
        """Each tensor put into the student's process (handles) must still equal its original.
        after: what fetching() yielded around the calls, whose answers carried the values back."""
        values = after.values if after is not None and after.values is not None else self.fetch_all(list(handles))
        for after, original, name in zip(values, originals, names):
            changed = ""
            if after.shape == original.shape:
                differing = after != original
                if original.is_floating_point():
                    differing &= ~(after.isnan() & original.isnan())
                if not differing.any():
                    continue
                index = tuple(int(i) for i in differing.nonzero()[0])
                changed = (
                    f"; {int(differing.sum())} of {original.numel()} values changed, the first at index {index}: "
                    f"{original[index].item()!r} before, {after[index].item()!r} after"
                )
            raise CheckFailed(
                f"{what} modified its {name} in place ({rule}); "
                f"before: {original.flatten()[:6].tolist()}, after: {after.flatten()[:6].tolist()}{changed}",
                f"{what} modified its {name} in place",
            )


def _batches(argument_sets, cost):
    """argument_sets in lists within BATCH_SETS, BATCH_TENSORS and BATCH_BYTES; cost(set) -> (tensors, bytes).
    A set over the bounds on its own goes alone: a request of its own is what it was."""
    batch, tensors, size = [], 0, 0
    for arguments in argument_sets:
        count, nbytes = cost(arguments)
        if batch and (len(batch) == BATCH_SETS or tensors + count > BATCH_TENSORS or size + nbytes > BATCH_BYTES):
            yield batch
            batch, tensors, size = [], 0, 0
        batch.append(arguments)
        tensors, size = tensors + count, size + nbytes
    if batch:
        yield batch


def _tensors(value, start: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """start plus the (count, bytes) of the tensors in value."""
    count, size = start
    if isinstance(value, torch.Tensor):
        return count + 1, size + value.numel() * value.element_size()
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        count, size = _tensors(item, (count, size))
    return count, size
