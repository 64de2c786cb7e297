"""Sandboxed execution of student code: worker processes and a pickle-free protocol.

Public names: :class:`Sandbox`, :class:`RemotePath`, :class:`RemoteObject`,
:class:`Ref`, :class:`Timing`, :class:`StudentError`, :class:`WorkerDied`,
:class:`MalformedReply` (a :class:`WorkerDied`: the worker broke the protocol).
"""

from autograder.sandbox.client import (
    MalformedReply,
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
    "MalformedReply",
    "Ref",
    "RemoteObject",
    "RemotePath",
    "Sandbox",
    "StudentError",
    "Timing",
    "WorkerDied",
    "isolation_available",
]
