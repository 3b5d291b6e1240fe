"""Blocking calls on an event loop's thread, detected by what they are, not by how long they took.

A callback that took 67 ms on a loaded machine says nothing; a sync socket connect, a blocking send or
receive, a ``time.sleep`` or a file opened on the loop's thread is a blocking call however fast it was. An
audit hook (``socket.connect``, ``socket.getaddrinfo``, ``open``, ...), the Python-level methods of
``socket.socket`` and ``time.sleep`` report them while a :func:`no_blocking_calls` block is active.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

# Audit events of calls that block unless the socket is non-blocking (asyncio's are).
_SOCKET_EVENTS = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
# Audit events that block whatever the arguments: name resolution, sleeping, processes.
_ALWAYS = frozenset(
    {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "subprocess.Popen", "os.system"}
)
# Files the import machinery opens (a lazy import is not the code under test doing file I/O).
_IMPORT_SUFFIXES = (".py", ".pyc", ".so", ".pth")
_SOCKET_METHODS = ("recv", "recv_into", "recvfrom", "send", "sendall")


class _Detector:
    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.calls: list[str] = []

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if threading.get_ident() != self.thread:
            return
        if event in _ALWAYS:
            self.calls.append(f"{event}{args[:2]!r}")
        elif event in _SOCKET_EVENTS and args and _blocking(args[0]):
            self.calls.append(f"{event} on a blocking socket {args[1:2]!r}")
        elif event == "open" and args and not str(args[0]).endswith(_IMPORT_SUFFIXES):
            self.calls.append(f"open({args[0]!r})")


def _blocking(sock: object) -> bool:
    return isinstance(sock, socket.socket) and sock.gettimeout() != 0.0


_active: list[_Detector] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    for detector in _active:
        detector.audit(event, args)


sys.addaudithook(_audit)  # audit hooks cannot be removed: one for the process, dispatching to the active


@contextlib.contextmanager
def no_blocking_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record the blocking calls made on this thread (run the event loop in it) while the block runs."""
    detector = _Detector(threading.get_ident())
    for name in _SOCKET_METHODS:
        original = getattr(socket.socket, name)

        def checked(self: socket.socket, *args: Any, _name: str = name, _original: Any = original) -> Any:
            if threading.get_ident() == detector.thread and _blocking(self):
                detector.calls.append(f"socket.{_name} on a blocking socket")
            return _original(self, *args)

        monkeypatch.setattr(socket.socket, name, checked)
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:  # no audit event for it before Python 3.12
        if threading.get_ident() == detector.thread and seconds > 0:
            detector.calls.append(f"time.sleep({seconds})")
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    _active.append(detector)
    try:
        yield detector.calls
    finally:
        _active.remove(detector)
