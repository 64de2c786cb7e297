"""Course data: the data directory setting, official downloads, loaders and fixtures.

The package is imported as ``coursedata`` (its folder is ``datasets/``; the name
avoids a clash with Hugging Face's ``datasets``).

Settings
--------

=====================  ===============================================  ==========================================
setting                default                                          meaning
=====================  ===============================================  ==========================================
``CVCOURSE_DATA_DIR``  ``$XDG_CACHE_HOME/cvcourse`` when                where datasets are looked up and
(environment variable) ``XDG_CACHE_HOME`` is set, else                  downloaded to, e.g. CIFAR-10 lives in
                       ``~/.cache/cvcourse``                            ``<dir>/cifar-10-batches-py``
=====================  ===============================================  ==========================================

Every function that takes a ``data_dir`` argument uses it instead of the setting
when it is given; ``python -m coursedata ... --data-dir D`` does the same.
``python -m coursedata where`` prints the resolved directory and what it holds.

Modules
-------

- :mod:`coursedata.download`: ``fetch`` (streamed, sha256-verified, atomic,
  cached downloads) and ``extract_tar`` (safe, atomic extraction).
- :mod:`coursedata.registry`: every course data set by name (``cifar10``,
  ``mnist``, ``fashion_mnist``, ``imagenet_val_25``, ``styles``,
  ``coco_captioning``): official files and checksums, ``find``, ``download``,
  ``load``, and ``generate``/``materialize`` for a stand-in in the official
  format when no copy exists. Each lives in ``<data dir>/<folder>`` (e.g.
  ``mnist/``, ``coco_captioning/``); Fashion-MNIST is also found where Debian's
  ``dataset-fashion-mnist`` installs it (``/usr/share/datasets/fashion-mnist``).
- :mod:`coursedata.cifar10`: ``find``, ``download``, ``load_batch``, ``load``,
  ``load_meta``, ``prepare`` and ``write_fixture`` for CIFAR-10 in the official
  Python pickle layout.
- :mod:`coursedata.idx`: the idx format of MNIST and Fashion-MNIST.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ENV_VAR", "DataNotFound", "data_dir", "data_dir_origin"]

#: Name of the environment variable that sets the data directory.
ENV_VAR = "CVCOURSE_DATA_DIR"


def data_dir_origin() -> tuple[Path, str]:
    """Resolve the data directory and say where the value came from.

    Returns:
        ``(path, origin)`` where ``origin`` is ``"CVCOURSE_DATA_DIR"``,
        ``"XDG_CACHE_HOME"`` or ``"default"``. An empty variable counts as unset.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser(), ENV_VAR
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "cvcourse", "XDG_CACHE_HOME"
    return Path.home() / ".cache" / "cvcourse", "default"


def data_dir() -> Path:
    """The data directory: ``$CVCOURSE_DATA_DIR``, else ``$XDG_CACHE_HOME/cvcourse``,
    else ``~/.cache/cvcourse``.

    The directory is not created here; downloads create it when needed.
    """
    return data_dir_origin()[0]


class DataNotFound(FileNotFoundError):
    """A dataset is not present where it was looked for.

    The message names the directories searched, the environment variable that
    points the course at another data directory, and the command that downloads
    the dataset.

    Attributes:
        dataset: short dataset name as used on the command line (``"cifar10"``).
        searched: the directories that were searched.
        expected: what was expected there (e.g. ``"cifar-10-batches-py/"``).
    """

    def __init__(
        self,
        dataset: str,
        searched: Path | Sequence[Path],
        expected: str,
        detail: str = "",
    ) -> None:
        self.dataset = dataset
        self.searched = (
            [Path(searched)] if isinstance(searched, str | Path) else [Path(p) for p in searched]
        )
        self.expected = expected
        where = ", ".join(str(p) for p in self.searched)
        message = (
            f"{dataset} data not found: looked for {expected} in {where}"
            + (f" ({detail})" if detail else "")
            + f". Set the environment variable {ENV_VAR} to the directory that holds "
            f"{expected}, or download it with: python -m coursedata download {dataset}"
        )
        super().__init__(message)

    def __reduce__(self):  # keep the exception picklable with its arguments
        """Support pickling (the default uses ``args``, which holds the message)."""
        return (type(self), (self.dataset, self.searched, self.expected))
