"""Deterministic randomness that the student's process cannot predict.

Two independent streams per check:

* the input seed, from which the grader draws the check's inputs: for a hidden
  check an HMAC of (student id, assignment, check id) under the course secret,
  which never enters a worker; for a public check a plain hash (its inputs are
  published in the bundle anyway);
* the process seed, with which the check's process seeds torch, numpy and
  random (a Dropout's masks): a one-way hash of the input seed, so knowing it
  tells nothing about the inputs.

A regrade repeats both, so it repeats the score; students differ.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

PUBLIC_STUDENT = "public"  # public checks use the same inputs for everybody (and in the bundle)
SECRET_FILE = "grading-secret"  # beside the assignments' reference folders: reference/grading-secret
SECRET_ENV = "AUTOGRADER_SECRET"


def check_seed(student: str, assignment: str, check_id: str, secret: bytes | None = None) -> int:
    """The input seed (63 bits): keyed by the course secret when there is one (hidden checks)."""
    message = f"{student}\0{assignment}\0{check_id}".encode()
    if secret is None:
        digest = hashlib.sha256(message).digest()
    else:
        digest = hmac.new(secret, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def process_seed(input_seed: int) -> int:
    """The seed of the check's process: derived one way, so it does not give the inputs away."""
    digest = hashlib.sha256(b"check process\0" + input_seed.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def course_secret(reference_root: Path) -> bytes:
    """The course's secret: $AUTOGRADER_SECRET, else reference/grading-secret, made on first use.

    Keep the file with the reference (regrades need the same secret to draw the
    same hidden inputs) and never hand it out: with it, hidden inputs can be computed.
    """
    from_environment = os.environ.get(SECRET_ENV, "").strip()
    if from_environment:
        return from_environment.encode()
    path = Path(reference_root) / SECRET_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = secrets.token_hex(32)
        # Written whole under a temporary name, then linked: a concurrent grader sees no file or all of it.
        temporary = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:  # another grader made it meanwhile: theirs counts
            text = path.read_text().strip()
        finally:
            os.unlink(temporary)
    if not text:
        raise ValueError(f"{path} is empty: put a long random string in it, or remove it to have one made")
    return text.encode()
