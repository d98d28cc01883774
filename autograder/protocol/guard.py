"""Run-time guard against forbidden torch APIs, inside the worker process.

Runs in the sandbox next to the student's code, so it imports only the
standard library and torch. Two layers, turned on once per check's process
before the student's module is imported:

* By name: each forbidden callable is swapped for a wrapper that refuses calls
  coming straight from a file in the student's directory while the check's
  Guard forbids it, and lets every other caller (torch itself, the worker)
  through, so the message can name the API and the line (`from torch import
  sigmoid` picks up the wrapper). The wrappers are the process's, made once
  (`cover`): the zygote makes those its checks name, so that a check's process,
  forked from it, only has to turn its own on (a few ms of wrapping saved a
  check). The price: a check's process carries the wrappers of every name an
  earlier check of its submission forbade, and a call to one costs it about
  0.5 us more than to the bare API, whether or not this check forbids it.
* By behaviour: a TorchDispatchMode sees every aten operator the process
  dispatches, whatever spelled it (`torch.ops.aten.gelu`, `nn.GELU.forward`,
  a private alias). An operator that only a forbidden API computes (OPERATORS)
  is refused while a student file is on the Python stack; so is any
  operator on a tensor that requires grad, and any run of the autograd engine
  (torch.func's transforms end there too), when autograd is forbidden. The
  mode follows the process into threads it starts, and a call that leaves it
  removed is a violation.
"""

import functools
import importlib
import inspect
import os
import sys
import threading
import types

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack

# What forbidding an API forbids at the dispatcher: the aten operators (packet names) that only it computes,
# by its name with case and underscores dropped (torch.nn.functional.leaky_relu, torch.nn.LeakyReLU: leakyrelu).
_CONVOLUTION = (
    "convolution", "_convolution", "convolution_backward", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "mkldnn_convolution", "_slow_conv2d_forward", "_slow_conv2d_backward",
    "slow_conv_dilated2d", "slow_conv_transpose2d", "slow_conv3d", "thnn_conv2d", "cudnn_convolution",
    "cudnn_convolution_transpose", "_nnpack_spatial_convolution", "miopen_convolution",
)
_CROSS_ENTROPY = ("nll_loss_forward", "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward")
_BATCH_NORM = (
    "native_batch_norm", "native_batch_norm_backward", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_batch_norm_with_update", "_batch_norm_no_update", "batch_norm_backward",
)
_MAX_POOL = ("max_pool2d", "max_pool2d_with_indices", "max_pool2d_with_indices_backward", "adaptive_max_pool2d",
             "adaptive_max_pool2d_backward", "fractional_max_pool2d", "max_unpool2d")
_AVG_POOL = ("avg_pool1d", "avg_pool2d", "avg_pool2d_backward", "_adaptive_avg_pool2d", "_adaptive_avg_pool2d_backward")
# softmax's masked twin only scaled_dot_product_attention's math path dispatches; the fused kernels by name
_ATTENTION = (
    "_safe_softmax", "_scaled_dot_product_attention_math", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention_for_cpu_backward", "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention", "_native_multi_head_attention",
)
OPERATORS = {
    "sigmoid": ("sigmoid", "sigmoid_backward"),
    "expit": ("sigmoid", "sigmoid_backward"),
    "tanh": ("tanh", "tanh_backward"),
    "relu": ("relu", "threshold_backward"),
    "leakyrelu": ("leaky_relu", "leaky_relu_backward"),
    "elu": ("elu", "elu_backward"),
    "softplus": ("softplus", "softplus_backward"),
    "gelu": ("gelu", "gelu_backward"),
    "softmax": ("_softmax", "_softmax_backward_data"),
    "logsoftmax": ("_log_softmax", "_log_softmax_backward_data"),
    "binarycrossentropy": ("binary_cross_entropy", "binary_cross_entropy_backward"),
    "bceloss": ("binary_cross_entropy", "binary_cross_entropy_backward"),
    "binarycrossentropywithlogits": ("binary_cross_entropy_with_logits",),
    "bcewithlogitsloss": ("binary_cross_entropy_with_logits",),
    "mseloss": ("mse_loss", "mse_loss_backward"),
    "crossentropy": _CROSS_ENTROPY,
    "crossentropyloss": _CROSS_ENTROPY,
    "nllloss": _CROSS_ENTROPY,
    "dropout": ("native_dropout", "native_dropout_backward"),
    "batchnorm": _BATCH_NORM,
    "batchnorm1d": _BATCH_NORM,
    **{name: _CONVOLUTION for name in ("conv1d", "conv2d", "conv3d", "convolution", "grad",
                                       "convtranspose1d", "convtranspose2d", "convtranspose3d")},
    "unfold": ("im2col",),
    "fold": ("col2im",),
    **{name: _MAX_POOL for name in ("maxpool2d", "maxpool2dwithindices", "adaptivemaxpool2d", "fractionalmaxpool2d")},
    **{name: _AVG_POOL for name in ("avgpool1d", "avgpool2d", "adaptiveavgpool2d")},
    "optim": ("_fused_adam", "_fused_adamw", "_fused_sgd", "_fused_adagrad"),
    **{name: ("embedding", "embedding_dense_backward", "_embedding_bag", "_embedding_bag_forward_only")
       for name in ("embedding", "embeddingbag")},
    **{name: _ATTENTION for name in ("scaleddotproductattention", "multiheadattention", "multiheadattentionforward",
                                     "nativemultiheadattention", "transformer", "transformerencoderlayer",
                                     "transformerdecoderlayer")},
}
_API_OWNERS = {"torch", "torch.nn", "torch.nn.functional", "torch.Tensor", "torch.special"}
AUTOGRAD = "torch.autograd"  # forbidding it forbids autograd in every spelling


def operators_for(names: list[str]) -> set[str]:
    """The aten operators the forbidden APIs `names` stand for (only those of this torch)."""
    found = set()
    for name in names:
        owner, _, last = name.rpartition(".")
        if owner not in _API_OWNERS:
            continue  # torch.autograd.grad is autograd, not torch.nn.grad's convolutions
        key = last.replace("_", "").lower()
        found.update(op for op in OPERATORS.get(key, ()) if hasattr(torch.ops.aten, op))
    return found


class ForbiddenAPIError(RuntimeError):
    """The student's code called an API its unit must implement itself."""


_active: "Guard | None" = None  # the guard of the check this process serves: what the name wrappers consult
_covered_names: set[str] = set()  # forbidden names whose callables are wrapped in this process
_wrappers: dict[tuple[int, str], dict[str, str]] = {}  # (id(owner), attribute) -> {forbidden name: API named}


def cover(names: list[str]) -> None:
    """Wrap the callables of each forbidden name that resolves in this torch (skip the others), once a
    process: the wrappers refuse only what the active Guard forbids, so making them ahead (the zygote,
    which never runs student code) leaves every caller as it was."""
    for name in names:
        if name not in _covered_names:
            _cover_name(name)  # a wrapper made before a failure stays made: a second try adds what is left
            _covered_names.add(name)


def warm() -> None:
    """Build once, in a process that forks checks, what each check's process would build anew: the aten
    operator packets OPERATORS names, and torch's per-operator objects and caches behind a dispatch mode.
    A forked check's process paid ~1 ms more for an operator it was the first to dispatch under the guard
    (two `randn`: 2.1 ms, 0.9 ms once its parent had dispatched them), so the template dispatches the
    common ones, in both float dtypes (~80 ms, once a slot)."""
    operators_for([f"torch.{name}" for name in OPERATORS])
    with _OperatorGuard(Guard([], os.sep)):
        for dtype in (torch.float64, torch.float32):
            _exercise(dtype)


def _exercise(dtype: torch.dtype) -> None:
    """The tensor algebra units are written in, once each: arithmetic, comparisons, reductions,
    products, shapes, indexing, creation, conversions, in-place updates (optimizers) and a few more."""
    x = torch.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(3, 4)
    y, v, mask = x.flip(0) + 0.5, x[0].clone(), x > 0
    positive = x.abs() + 0.5
    for value in (x + 1, x - 1, 1 - x, x * 2, x / 3, 2 / positive, -x, x ** 2, x.pow(3), x.square(), x.sign(),
                  positive.sqrt(), positive.rsqrt(), x.exp(), x.expm1(), positive.log(), x.log1p(), positive.log2(),
                  x.sin(), x.cos(), x.tanh(), x.sigmoid(), x.erf(), positive.reciprocal(), x.clamp(min=0),
                  x.clamp(-0.5, 0.5), x.clamp_min(0), torch.maximum(x, y), torch.minimum(x, y), x.floor(), x.ceil(),
                  x.round(), x.trunc(), x.fmod(0.3), x.remainder(0.3), torch.relu(x), torch.softmax(x, 1),
                  torch.log_softmax(x, 1)):
        value.sum()
    for value in (x > 0, x >= 0, x < 0, x <= 0, x == 0, x != 0, x.isfinite(), x.isnan(), x.isinf(),
                  mask & (x < 0.5), mask | (x < 0.5), ~mask, mask.logical_and(mask), mask.logical_or(mask),
                  mask.logical_not(), mask.any(), mask.all(), mask.count_nonzero()):
        value.sum()
    for value in (x.sum(), x.sum(dim=1), x.mean(), x.mean(dim=0, keepdim=True), x.max(), x.max(dim=1).values,
                  x.min(), x.min(dim=0).values, x.amax(dim=1), x.amin(dim=1), x.argmax(), x.argmin(dim=1),
                  x.prod(), x.var(), x.std(dim=0), x.norm(), x.cumsum(1), x.cumprod(1), x.logsumexp(1)):
        value.sum().item()
    for value in (x @ y.t(), x.t() @ y, x @ v, v @ v, torch.mv(x, v), torch.dot(v, v), torch.outer(v, v),
                  torch.bmm(x[None], y.t()[None]), torch.einsum("ij,kj->ik", x, y), torch.addmm(v[:3], x, y.t()),
                  x.transpose(0, 1), x.permute(1, 0), x.view(4, 3), x.reshape(-1), x.flatten(), x.unsqueeze(0),
                  x[None].squeeze(0), v.expand(3, 4), v.expand_as(x), x.repeat(2, 1), torch.cat([x, y]),
                  torch.cat([x, y], dim=1), torch.stack([x, y]), x.roll(1, 1), x.tril(), x.triu(), v.diag(),
                  x.t().contiguous(), x.narrow(1, 0, 2), v.unfold(0, 2, 1), x.as_strided((2, 2), (4, 1)),
                  x.movedim(0, 1), *x.split(2, dim=1), *x.chunk(2), x[0], x[:, 1:3], x[mask], x[[0, 2]],
                  x.index_select(1, torch.tensor([0, 2])), x.gather(1, torch.zeros(3, 1, dtype=torch.long)),
                  x.masked_fill(mask, 0.0), torch.where(mask, x, 0.0), torch.where(mask, x, y), mask.nonzero(),
                  x.topk(2).values, x.sort(dim=1).values, x.argsort(dim=1), torch.nn.functional.pad(x, (1, 1))):
        value.sum()
    for value in (torch.zeros(3, dtype=dtype), torch.ones(3, dtype=dtype), torch.full((3,), 2.0, dtype=dtype),
                  torch.empty(3, dtype=dtype), torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, 2.0),
                  torch.empty_like(x), torch.rand(3, dtype=dtype), torch.randn(3, dtype=dtype),
                  torch.randint(0, 4, (3,)), torch.rand_like(x), torch.randn_like(x), torch.arange(4, dtype=dtype),
                  torch.linspace(0, 1, 4, dtype=dtype), torch.eye(3, dtype=dtype), torch.tensor([1.0, 2.0], dtype=dtype),
                  torch.bernoulli(torch.full((3,), 0.5, dtype=dtype)), torch.multinomial(positive[0], 2),
                  torch.randperm(4), torch.normal(0.0, 1.0, (3,), dtype=dtype), x.new_zeros(3), x.new_ones(3),
                  x.new_full((3,), 2.0), x.new_tensor([1.0]), x.float(), x.double(), x.long(), mask.to(dtype),
                  x.to(torch.float32), x.clone(), x.detach(), torch.linalg.lstsq(x, y).solution,
                  torch.linalg.solve(x @ x.t() + torch.eye(3, dtype=dtype), v[:3]), torch.linalg.inv(positive[:, :3])):
        value.sum()
    x.tolist()
    z = x.clone()
    z.add_(y).sub_(y).mul_(2).div_(2).clamp_(-1, 1).addcmul_(x, y, value=0.5).addcdiv_(x, positive, value=0.1)
    z.lerp_(y, 0.5).sqrt_().zero_().fill_(1.0).copy_(x).masked_fill_(mask, 0.0).exp_().pow_(2)
    z[mask] = 0.0
    z[0] = 1.0
    z[:, 1] += v[:3]
    z.index_add_(0, torch.tensor([0, 1]), x[:2]).scatter_(1, torch.zeros(3, 1, dtype=torch.long), 1.0)
    z.scatter_add_(1, torch.zeros(3, 1, dtype=torch.long), x[:, :1]).sum().item()


class Guard:
    def __init__(self, names: list[str], student_dir: str):
        self.names = list(names)
        self._forbidden_names = set(self.names)
        self.operators = operators_for(self.names)
        self.autograd_forbidden = any(name == AUTOGRAD or name.startswith(AUTOGRAD + ".") for name in self.names)
        self.mode: _OperatorGuard | None = None
        self.violations: list[str] = []  # e.g. "torch.sigmoid called at activations.py:12 in forward"
        self._student_prefix = os.path.join(os.path.realpath(student_dir), "")
        self._student_file_cache: dict[str, bool] = {}
        self._student_class_cache: dict[type, bool] = {}

    def install(self) -> None:
        """Guard this process's calls: by name (the wrappers turned on for these names), then the dispatcher."""
        global _active
        cover(self.names)
        _active = self
        if self.operators or self.autograd_forbidden:
            self._install_dispatcher()

    def forbidden_api(self, forbidding: dict[str, str]) -> str | None:
        """The API to name when a wrapper covered for `forbidding` ({forbidden name: API}) is called."""
        for name, api in forbidding.items():
            if name in self._forbidden_names:
                return api
        return None

    def _install_dispatcher(self) -> None:
        self.mode = _OperatorGuard(self)
        self.mode.__enter__()  # for the rest of this process: it serves one check
        if self.autograd_forbidden:
            from torch.autograd.variable import Variable

            Variable._execution_engine = _GuardedEngine(Variable._execution_engine, self)
        # Dispatch modes are per thread: a thread the process starts gets the mode too.
        import _thread

        start_new_thread = _thread.start_new_thread

        def start_guarded(function, args, kwargs=None):
            def guarded(*args, **kwargs):
                with self.mode:
                    return function(*args, **kwargs)

            return start_new_thread(guarded, args, kwargs or {})

        _thread.start_new_thread = start_guarded
        if hasattr(threading, "_start_new_thread"):  # threading keeps its own reference (3.11, 3.12)
            threading._start_new_thread = start_guarded

    def check_dispatcher(self) -> None:
        """After a call into the student's code: the operator guard must still be in place."""
        if self.mode is not None and self.mode not in _get_current_dispatch_mode_stack():
            self.violations.append("the run-time guard (a torch dispatch mode) was removed by the student's code")
            self.mode.__enter__()

    def refuse_operator(self, what: str) -> None:
        """`what` was dispatched: refuse it when a student file is on the stack."""
        frame = sys._getframe(1)
        while frame is not None and not self._is_student_file(frame.f_code.co_filename):
            frame = frame.f_back
        if frame is not None:
            self._refuse(what, "reached from", _location(frame))

    def _refuse(self, api: str, how: str, location: str) -> None:
        # Recorded before raising: the student's code may catch the error.
        self.violations.append(f"{api} {how} {location}")
        raise ForbiddenAPIError(f"{api} is not allowed here ({location}): implement it with plain tensor operations")

    def _is_student_file(self, filename: str) -> bool:
        known = self._student_file_cache.get(filename)
        if known is None:
            # "<string>", "<frozen ...>": no file to place.
            known = not filename.startswith("<") and os.path.realpath(filename).startswith(self._student_prefix)
            self._student_file_cache[filename] = known
        return known

    def _is_student_class(self, cls: type) -> bool:
        known = self._student_class_cache.get(cls)
        if known is None:
            module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
            # A module loaded without a sys.modules entry still leaves its
            # file in the code of the class's own methods.
            files = [module_file] if module_file else [
                member.__code__.co_filename for member in vars(cls).values() if hasattr(member, "__code__")
            ]
            known = any(self._is_student_file(file) for file in files)
            self._student_class_cache[cls] = known
        return known


def _cover_name(name: str) -> None:
    owner, attribute, target = _resolve(name)
    if target is None:
        return
    if isinstance(target, types.ModuleType):
        _cover_module(name, target)
    elif inspect.isclass(target):
        _cover_class(name, name, target)
    elif callable(target):
        _cover_attribute(name, name, owner, attribute)


def _cover_module(forbidden: str, module: types.ModuleType) -> None:
    """Guard the module's public functions, and the classes defined in it.

    A function is replaced in this module's namespace only, so guarding
    re-exports is harmless. A class is changed everywhere, so classes
    only re-exported here (torch.nn.functional's Tensor) are left alone.
    """
    public = getattr(module, "__all__", None)
    if public is None:
        public = [name for name in vars(module) if not name.startswith("_")]
    for attribute in public:
        target = getattr(module, attribute, None)
        qualified = f"{module.__name__}.{attribute}"
        if inspect.isclass(target):
            if (target.__module__ + ".").startswith(module.__name__ + "."):
                _cover_class(forbidden, qualified, target)
        elif inspect.isroutine(target):
            _cover_attribute(forbidden, qualified, module, attribute)


def _forbidding(owner, attribute: str, forbidden: str, api: str) -> dict[str, str] | None:
    """The {forbidden name: API} of owner.attribute's wrapper, this name added; None when it has none yet."""
    forbidding = _wrappers.get((id(owner), attribute))
    if forbidding is not None:
        forbidding.setdefault(forbidden, api)
    return forbidding


def _refuse_a_student_caller(forbidding: dict[str, str]) -> "tuple[Guard, str] | None":
    """In a wrapper: (the active guard, the API it refuses) when it forbids one of `forbidding`, None
    otherwise; a call made straight from a student's file is refused here."""
    guard = _active
    api = guard.forbidden_api(forbidding) if guard else None
    if not api:
        return None
    caller = sys._getframe(2)  # the wrapper's caller
    if guard._is_student_file(caller.f_code.co_filename):
        guard._refuse(api, "called at", _location(caller))
    return guard, api


def _cover_class(forbidden: str, api: str, cls: type) -> None:
    """Wrap __init__: catches construction, and subclasses defined by the student."""
    if _forbidding(cls, "__init__", forbidden, api) is not None:
        return
    forbidding = {forbidden: api}
    original = cls.__init__
    is_object_init = original is object.__init__

    @functools.wraps(original)
    def guarded_init(instance, *args, **kwargs):
        refusing = _refuse_a_student_caller(forbidding)
        if refusing:
            guard, api = refusing
            subclass = type(instance)
            if subclass is not cls and guard._is_student_class(subclass):
                guard._refuse(api, "subclassed by", f"class {subclass.__module__}.{subclass.__qualname__}")
        if is_object_init:
            # object.__init__ rejects arguments once __init__ is
            # overridden; the arguments were meant for __new__.
            return original(instance)
        return original(instance, *args, **kwargs)

    try:
        cls.__init__ = guarded_init
    except TypeError:
        return  # a built-in type: its attributes cannot be replaced
    _wrappers[(id(cls), "__init__")] = forbidding


def _cover_attribute(forbidden: str, api: str, owner, attribute: str) -> None:
    """Replace owner.attribute (a module function or a class method) with a guarded wrapper."""
    if _forbidding(owner, attribute, forbidden, api) is not None:
        return
    forbidding = {forbidden: api}
    # The raw attribute, so that static and class methods stay what they are; one only a __getattr__
    # gives (torch._VF's functions) is set on the owner itself.
    try:
        raw = inspect.getattr_static(owner, attribute)
    except AttributeError:
        raw = getattr(owner, attribute)
    descriptor = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
    original = raw.__func__ if descriptor else getattr(owner, attribute)

    @functools.wraps(original)
    def guarded(*args, **kwargs):
        _refuse_a_student_caller(forbidding)
        return original(*args, **kwargs)

    try:
        setattr(owner, attribute, descriptor(guarded) if descriptor else guarded)
    except (TypeError, AttributeError):
        return  # a built-in type or a read-only attribute
    _wrappers[(id(owner), attribute)] = forbidding


def _resolve(name: str) -> tuple[object, str, object]:
    """(owner, last attribute, object) for a dotted name; object None when absent."""
    parts = name.split(".")
    try:
        owner = target = importlib.import_module(parts[0])
    except ImportError:
        return None, "", None
    for depth, part in enumerate(parts[1:], start=2):
        owner = target
        if hasattr(owner, part):
            target = getattr(owner, part)
        elif isinstance(owner, types.ModuleType):
            try:  # a submodule not imported yet
                target = importlib.import_module(".".join(parts[:depth]))
            except ImportError:
                return None, "", None
        else:
            return None, "", None
    return owner, parts[-1], target


def _location(frame) -> str:
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


class _OperatorGuard(TorchDispatchMode):
    """Sees every aten operator dispatched in this thread; the guard decides."""

    def __init__(self, guard: Guard):
        super().__init__()
        self.guard = guard
        self.forbidden: dict = {}  # operator overload -> whether the guard refuses it

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # no torch.compile here: a dynamo-disabling wrapper would cost ~20x per operator


    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        forbidden = self.forbidden.get(func)
        if forbidden is None:  # once per operator overload: this runs for every operator the check dispatches
            forbidden = self.forbidden[func] = func.overloadpacket.__name__ in self.guard.operators
        if forbidden:
            self.guard.refuse_operator(f"torch.ops.aten.{func.overloadpacket.__name__} (what a forbidden API computes)")
        if self.guard.autograd_forbidden and _needs_grad(args, kwargs):
            self.guard.refuse_operator(f"autograd (torch.ops.aten.{func.overloadpacket.__name__} on a tensor that requires grad)")
        return func(*args, **kwargs)


class _GuardedEngine:
    """The autograd engine, refusing to run a backward pass for the student's code."""

    def __init__(self, engine, guard: Guard):
        self._engine = engine
        self._guard = guard

    def run_backward(self, *args, **kwargs):
        self._guard.refuse_operator("autograd (a backward pass of the autograd engine)")
        return self._engine.run_backward(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def _needs_grad(args, kwargs) -> bool:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            if value.requires_grad:
                return True
        elif isinstance(value, (list, tuple)):
            if any(isinstance(item, torch.Tensor) and item.requires_grad for item in value):
                return True
    return False

