"""What a sandbox request can end in besides a value: the student's exception or a dead worker."""

from __future__ import annotations

import signal

__all__ = ["MalformedReply", "StudentError", "WorkerDied", "death_reason"]


class StudentError(Exception):
    """Student code raised an exception in the worker.

    Attributes: ``type_name``, ``message`` and ``frames`` (the traceback lines
    inside the submission, innermost last, like ``"cs231n/layers.py:42 in f: ..."``).
    """

    def __init__(self, type_name: str, message: str, frames: list[str] | None = None,
                 note: str = "") -> None:
        self.type_name = type_name
        self.message = message
        self.frames = list(frames or [])
        self.note = note
        super().__init__(self.describe())

    def location(self) -> str:
        """``file:line`` of the innermost student frame, or ``""``."""
        if not self.frames:
            return ""
        return self.frames[-1].split(" in ", 1)[0]

    def describe(self) -> str:
        """One readable line: ``your code raised TypeError: msg at layers.py:42``."""
        text = f"your code raised {self.type_name}"
        if self.message:
            text += f": {self.message}"
        if self.location():
            text += f" at {self.location()}"
        if self.note:
            text += f" ({self.note})"
        return text


class WorkerDied(Exception):
    """The worker process timed out, crashed or exited; ``reason`` says which."""

    def __init__(self, reason: str, internal: bool = False) -> None:
        self.reason = reason
        self.internal = internal  # the grader's fault (confinement failed), not the student's
        super().__init__(reason)


class MalformedReply(WorkerDied):
    """The worker sent something that is not a valid reply (its code wrote on the
    grader's pipe, or sent an absurd value): the worker is stopped, and the test
    fails as the student's."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"your code sent the grader a malformed reply ({detail}); "
                         "the worker was stopped")
        self.detail = detail


def death_reason(why: str, code: int | None, timeout: float,
                 memory_limit_mb: int | None) -> str:
    """The report's sentence for a worker that stopped: ``why`` is what the grader saw
    (``"timeout"``, ``"end of file"``, a protocol error, ...), ``code`` the exit
    status (``Popen.returncode`` style, ``None`` if unknown)."""
    if why == "timeout":
        reason = f"timed out after {timeout:g} s (killed)"
    elif code is None:
        reason = f"the worker stopped answering ({why})"
    elif code >= 0:
        reason = f"the worker process exited with code {code}"
    else:
        try:
            signame = signal.Signals(-code).name
        except ValueError:
            signame = str(-code)
        reason = f"the worker process was killed by signal {signame}"
        if memory_limit_mb and -code in (signal.SIGKILL, signal.SIGSEGV,
                                         signal.SIGABRT, signal.SIGBUS):
            reason += f" (possibly the memory limit of {memory_limit_mb} MB)"
    if why not in ("timeout", "end of file", "broken pipe"):
        reason += f": {why}"
    return reason
