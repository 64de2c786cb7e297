"""Sandboxed execution of student code: worker processes and a pickle-free protocol.

Public names: :class:`Sandbox`, :class:`RemotePath`, :class:`RemoteObject`,
:class:`Ref`, :class:`Timing`, :class:`StudentError`, :class:`WorkerDied`.
"""

from autograder.sandbox.client import (
    Ref,
    RemoteObject,
    RemotePath,
    Sandbox,
    StudentError,
    Timing,
    WorkerDied,
    isolation_available,
)

__all__ = [
    "Ref",
    "RemoteObject",
    "RemotePath",
    "Sandbox",
    "StudentError",
    "Timing",
    "WorkerDied",
    "isolation_available",
]
