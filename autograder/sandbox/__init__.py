"""Sandboxed execution of student code: worker processes and a pickle-free protocol.

Public names: :class:`Sandbox`, :class:`Zygote`, :class:`RemotePath`,
:class:`RemoteObject`, :class:`Ref`, :class:`Timing`, :class:`StudentError`,
:class:`WorkerDied`, :func:`isolation_available`.

Modules, grader side: ``errors`` (what a request can end in), ``paths`` (what a
confined worker sees), ``launch`` (scratch folder, confinement plan, limits),
``remote`` (proxies for objects in the worker), ``sandbox`` (one worker, its
requests, the isolation verdict), ``zygote`` (the per-submission fork server),
``reaping`` (killing leftovers). Worker side, copied next to the worker and
importing only the standard library: ``worker``, ``protocol``, ``jail``.
"""

from autograder.sandbox.errors import StudentError, WorkerDied
from autograder.sandbox.protocol import Ref
from autograder.sandbox.remote import RemoteObject, RemotePath
from autograder.sandbox.sandbox import Sandbox, Timing, isolation_available
from autograder.sandbox.zygote import Zygote

__all__ = [
    "Ref",
    "RemoteObject",
    "RemotePath",
    "Sandbox",
    "StudentError",
    "Timing",
    "WorkerDied",
    "Zygote",
    "isolation_available",
]
