"""A student's helper module that tries to fool any timing done in its own process.

`fool_clocks()` replaces every clock it can reach (time.*, their _ns forms,
clock_gettime, os.times, resource.getrusage, datetime.now, timeit, torch's
CUDA events and synchronize, torch.utils.benchmark.Timer) with clocks that
barely move, and asks torch for more threads. `fooling(f)` runs it before
every call of f. tests/variants.py builds the hostile submission from it.
"""

import datetime
import math
import os
import time
import timeit

import torch

try:
    import resource
except ImportError:  # not on every platform
    resource = None


_TICK = [0]
_REAL = {}
_BASE = {}


def _now():
    _TICK[0] += 1
    return _TICK[0] * 1e-9


def _base(key, read):
    if key not in _BASE:
        _BASE[key] = read()
    return _BASE[key]


def _slow_clock(name, real):
    base = _base(name, real)

    def clock(*args):
        return base + _now()

    clock._slow = True
    clock.__name__ = name
    return clock


def _slow_clock_ns(name, real):
    base = _base(name, real)

    def clock(*args):
        _now()
        return base + _TICK[0]

    clock._slow = True
    clock.__name__ = name
    return clock


def _real(module, name):
    key = (module.__name__, name)
    fn = getattr(module, name)
    if not getattr(fn, "_slow", False):
        _REAL.setdefault(key, fn)
    return _REAL[key]


def fool_clocks():
    for name in ("time", "perf_counter", "monotonic", "process_time", "thread_time"):
        try:
            setattr(time, name, _slow_clock(name, _real(time, name)))
        except Exception:
            pass
        try:
            setattr(time, name + "_ns", _slow_clock_ns(name + "_ns", _real(time, name + "_ns")))
        except Exception:
            pass
    try:
        real = _real(time, "clock_gettime")
        base = _base("clock_gettime", lambda: real(time.CLOCK_MONOTONIC))

        def clock_gettime(clk_id=None):
            return base + _now()

        clock_gettime._slow = True
        time.clock_gettime = clock_gettime
    except Exception:
        pass
    try:
        real = _real(time, "clock_gettime_ns")
        base_ns = _base("clock_gettime_ns", lambda: real(time.CLOCK_MONOTONIC))

        def clock_gettime_ns(clk_id=None):
            _now()
            return base_ns + _TICK[0]

        clock_gettime_ns._slow = True
        time.clock_gettime_ns = clock_gettime_ns
    except Exception:
        pass
    try:
        real = _real(os, "times")
        first = _base("times", real)

        def times():
            t = _now()
            return type(first)((first[0] + t, first[1], first[2], first[3], first[4] + t))

        times._slow = True
        os.times = times
    except Exception:
        pass
    if resource is not None:
        try:
            real = _real(resource, "getrusage")
            def getrusage(who=resource.RUSAGE_SELF):
                fields = list(_base(("getrusage", who), lambda: tuple(real(who))))
                fields[0] += _now()
                return resource.struct_rusage(fields)

            getrusage._slow = True
            resource.getrusage = getrusage
        except Exception:
            pass
    try:
        real_dt = _REAL.setdefault(("datetime", "datetime"), datetime.datetime)
        if getattr(datetime.datetime, "_slow", False) is False:
            start = _base("datetime", real_dt.now)

            class _datetime(real_dt):
                _slow = True

                @classmethod
                def now(cls, tz=None):
                    t = start + datetime.timedelta(microseconds=_now() * 1e6)
                    return t if tz is None else t.replace(tzinfo=tz)

                @classmethod
                def utcnow(cls):
                    return start + datetime.timedelta(microseconds=_now() * 1e6)

            datetime.datetime = _datetime
    except Exception:
        pass
    try:
        timeit.default_timer = time.perf_counter
        for fn in (timeit.Timer.__init__, timeit.timeit, timeit.repeat):
            try:
                if fn.__defaults__:
                    fn.__defaults__ = tuple(
                        time.perf_counter if getattr(d, "__name__", "") == "perf_counter" else d
                        for d in fn.__defaults__
                    )
            except Exception:
                pass
    except Exception:
        pass
    try:
        class Event:
            def __init__(self, *args, **kwargs):
                pass

            def record(self, *args, **kwargs):
                pass

            def synchronize(self):
                pass

            def wait(self, *args, **kwargs):
                pass

            def query(self):
                return True

            def elapsed_time(self, other):
                return 0.001

        torch.cuda.Event = Event
        torch.cuda.synchronize = lambda *args, **kwargs: None
    except Exception:
        pass
    try:
        import torch.utils.benchmark as benchmark

        class _Measurement:
            def __init__(self, number=1):
                self.number_per_run = number
                self.raw_times = [1e-9]
                self.times = [1e-9]
                self.mean = self.median = self.iqr = 1e-9

        class Timer:
            def __init__(self, *args, **kwargs):
                pass

            def timeit(self, number=1000000):
                return _Measurement(number)

            def blocked_autorange(self, *args, **kwargs):
                return _Measurement()

            def adaptive_autorange(self, *args, **kwargs):
                return _Measurement()

            def repeat(self, repeat=-1, number=-1, *args, **kwargs):
                return [_Measurement(number)]

        benchmark.Timer = Timer
    except Exception:
        pass


def fooling(function):
    """function, with every clock fooled again right before each call."""

    def call(*args, **kwargs):
        try:
            fool_clocks()
            torch.set_num_threads(2)
        except Exception:
            pass
        return function(*args, **kwargs)

    return call


try:
    fool_clocks()
except Exception:
    pass
