"""Sandboxed execution of student code: worker processes and a pickle-free protocol.

Public names: :class:`Sandbox`, :class:`Zygote`, :class:`RemotePath`,
:class:`RemoteObject`, :class:`Ref`, :class:`Timing`, :class:`StudentError`,
:class:`WorkerDied`, :class:`MalformedReply` (a :class:`WorkerDied`: the worker
broke the protocol), :func:`isolation_available`.

Modules, grader side: ``errors`` (what a request can end in), ``paths`` (what a
confined worker sees), ``launch`` (scratch folder, confinement plan, limits),
``remote`` (proxies for objects in the worker), ``sandbox`` (one worker, its
requests, the isolation verdict), ``zygote`` (the per-submission fork server),
``reaping`` (killing leftovers), ``uids`` (sandbox uids leased machine-wide),
``timing`` (what a timed call costs the student: the stopwatch behind
``Sandbox.timeit``). Worker side, copied next to the worker and
importing only the standard library: ``worker``, ``protocol``, ``jail``.
"""

from autograder.sandbox.errors import MalformedReply, StudentError, WorkerDied
from autograder.sandbox.protocol import Ref
from autograder.sandbox.remote import RemoteObject, RemotePath
from autograder.sandbox.sandbox import Sandbox, isolation_available
from autograder.sandbox.timing import Timing
from autograder.sandbox.zygote import Zygote

__all__ = [
    "MalformedReply",
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
