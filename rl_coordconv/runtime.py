"""Process-level settings that make PyTorch on a small CPU box fast. No SB3, no gym.

``tune_malloc`` matters more than it looks: glibc hands every large freed tensor back to the
kernel and page-faults it in again on the next allocation. On this project's 2-core machines
that cost a Nature-CNN update up to a quarter of its time (see BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType

import torch

__all__ = ["STOP_SIGNALS", "connect_ray", "ignore_stop_signals", "resolve_device", "stop_signals", "tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30


def tune_malloc() -> bool:
    """Keep freed memory in the process instead of returning it to the OS (glibc only).

    Equivalent to ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set to 1 GiB. Safe to
    call more than once; a no-op where libc is not glibc.

    :return: whether the settings were applied
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without CUDA is an error.

    :param device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``
    :return: the torch device
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for CUDA, but torch {torch.__version__} sees no CUDA device")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from error


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals(request: Callable[[int], None]) -> Iterator[None]:
    """While inside, the first Ctrl-C (SIGINT) or SIGTERM calls ``request(signal number)`` instead of
    stopping the process; a second Ctrl-C raises ``KeyboardInterrupt`` (stop now), and later ones
    are ignored, so that the clean-up it starts (stopping actors, closing envs) is not cut short.

    ``request`` runs in a signal handler: it should only note the request (printing there can
    collide with the main thread's own output). Outside the main thread, where Python cannot
    handle signals, nothing changes; nor does a signal the process ignores (Ctrl-C in a shell's
    background job), which stays ignored, as Python itself leaves it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    previous = {number: handler for number, handler in previous.items() if handler != signal.SIG_IGN}
    asked = interrupted = False

    def handle(number: int, frame: object) -> None:
        nonlocal asked, interrupted
        if not asked:
            asked = True
            request(number)
        elif number == signal.SIGINT and not interrupted:
            interrupted = True
            raise KeyboardInterrupt

    for number in previous:
        signal.signal(number, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: not set from Python


def ignore_stop_signals() -> None:
    """In a worker process (an actor, an env): leave Ctrl-C and SIGTERM (a terminal, ``timeout`` and
    schedulers send them to a whole process group) to the run, which checkpoints, then stops its
    workers by closing their pipes (or, failing that, SIGKILL)."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def connect_ray(address: str | None, *, option: str) -> ModuleType:
    """Import Ray (an optional extra) and join the cluster at ``address``.

    :param address: None (Ray's own default: the cluster in ``RAY_ADDRESS`` or the one ``ray start``
        last started on this machine, else a new Ray instance here), ``auto`` (the same, but
        an error when there is no cluster), ``local`` (always a new instance here),
        ``host:port`` or ``ray://host:10001``; ignored when this process is connected already
    :param option: the command-line option that asked for Ray, for the error without it
    :return: the ``ray`` module, connected
    :raises ValueError: Ray is not installed, or the cluster cannot be reached (one line)
    """
    try:
        import ray
    except ImportError as error:
        raise ValueError(f"{option} needs the ray extra: pip install 'rl-coordconv[ray]'") from error
    joining = address not in (None, "local")
    if not joining:
        # Ray starts its workers at nice 15, so on one machine a busy driver (Ape-X's learner)
        # or any other job would starve them of the cores they were given; here they do the work.
        # (Read only by an instance this process starts; a running cluster keeps its own.)
        os.environ.setdefault("RAY_worker_niceness", "0")
    # Joining a cluster, Ray tries its GCS about once a second for 20 s before it gives up on an
    # address; a live one answers the first time. Three tries answer a mistyped address in ≈ 3 s.
    # (Not when starting an instance: there the same setting bounds the wait for the new GCS.)
    with _environ(RAY_gcs_server_port_wait_time_s=str(_RAY_JOIN_TRIES) if joining else None):
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first_line = next(iter(str(error).strip().splitlines()), type(error).__name__)
            raise ValueError(f"cannot reach a Ray cluster at {address!r}: {first_line}") from error
    return ray


_RAY_JOIN_TRIES = 3


@contextlib.contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    """Set environment variables the user has not set (None: leave it), restoring them afterwards."""
    added = [name for name, value in values.items() if value is not None and name not in os.environ]
    os.environ.update({name: str(values[name]) for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
