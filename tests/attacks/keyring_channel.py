# file: activations.py
# unit: activations.Sigmoid
# stops: namespace docker
# A channel between checks through the kernel's keyrings: the user keyring (@u) is one per uid
# and the session keyring (@s) is inherited, so keys left by one check's process outlive it.
# Sigmoid's checks leave a key; every later check's process that finds one turns Tanh wrong,
# so a leak costs Tanh points it should keep.
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_ADD_KEY, _KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(os.uname().machine, (-1, -1))
_KEYRINGS = (-4, -3)  # KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING
_KEYCTL_SEARCH = 10
_NAME = b"__MARKER__"


def _leave_key():
    for keyring in _KEYRINGS:
        _libc.syscall(_ADD_KEY, b"user", _NAME, b"tanh off", 8, ctypes.c_long(keyring))


def _key_found():
    return any(_libc.syscall(_KEYCTL, _KEYCTL_SEARCH, ctypes.c_long(k), b"user", _NAME, 0) >= 0 for k in _KEYRINGS)


class Sigmoid(Sigmoid):
    def forward(self, x):
        _leave_key()
        return x * 0


if _key_found():  # told by an earlier check's process

    class Tanh(Tanh):
        def forward(self, x):
            return x * 0
