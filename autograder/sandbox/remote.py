"""Grader-side proxies for things in the worker: attribute paths and opaque objects.

A proxy only records *where* something is (a dotted path from the library
root, or a handle id plus attributes); every call, ``get`` and ``set`` is a
request its :class:`~autograder.sandbox.sandbox.Sandbox` sends to the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autograder.sandbox.protocol import Handle, Ref

if TYPE_CHECKING:  # annotations only: the Sandbox module imports this one
    from autograder.sandbox.sandbox import Sandbox

__all__ = ["RemoteObject", "RemotePath", "to_wire"]


class RemotePath:
    """An attribute path in the worker: call it, ``get()`` it or ``set(value)`` it.

    ``student.lib.layers.affine_forward(x, w, b)`` calls the student's function;
    ``obj.params.get()`` fetches an attribute of a remote object as plain data.
    Use ``.attr(name)`` for attribute names that clash with ``get``/``set``.
    """

    def __init__(self, sandbox: Sandbox, target: dict[str, Any]) -> None:
        object.__setattr__(self, "_sandbox", sandbox)
        object.__setattr__(self, "_target", target)

    def attr(self, name: str) -> RemotePath:
        """The attribute ``name`` of this path."""
        t = self._target
        if "path" in t:
            new = {"path": f"{t['path']}.{name}" if t["path"] else name}
        else:
            new = {"ref": t["ref"], "attrs": [*t.get("attrs", []), name]}
        return RemotePath(self._sandbox, new)

    def __getattr__(self, name: str) -> RemotePath:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.attr(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("use .set(value) to assign a remote attribute")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sandbox._call(self._target, args, kwargs)

    def get(self) -> Any:
        """Fetch the value as plain data (a :class:`RemoteObject` if it is not plain)."""
        return self._sandbox._request({"op": "get", "target": self._target})

    def set(self, value: Any) -> None:
        """Assign ``value`` (plain data, :class:`Ref` or :class:`RemoteObject`)."""
        self._sandbox._request({"op": "set", "target": self._target, "value": value})

    def __repr__(self) -> str:
        t = self._target
        where = t["path"] if "path" in t else f"<handle {t['ref']}>." + ".".join(t["attrs"])
        return f"RemotePath({where})"


class RemoteObject(RemotePath):
    """An opaque object living in the worker (an instance, a cache, ...)."""

    def __init__(self, sandbox: Sandbox, handle: Handle) -> None:
        super().__init__(sandbox, {"ref": handle.id, "attrs": []})
        object.__setattr__(self, "_handle", handle)

    @property
    def type_name(self) -> str:
        """The class name of the remote object."""
        return self._handle.type

    @property
    def ref(self) -> Ref:
        """A :class:`Ref` that stands for this object in arguments."""
        return Ref(self._handle.id)

    def __repr__(self) -> str:
        return f"<remote {self._handle.type} object #{self._handle.id}>"


def to_wire(value: Any) -> Any:
    """The protocol's hook for non-plain values: a whole remote object travels as its
    :class:`Ref`; anything else is not sendable (``None``)."""
    if isinstance(value, RemotePath):
        t = value._target
        if "ref" in t and not t.get("attrs"):
            return Ref(t["ref"])
    return None  # not sendable
