"""Command line: ``python -m coursedata {download,where,fixture} ...``.

Examples::

    python -m coursedata where
    python -m coursedata download NAME [--data-dir D] [--no-progress]
    python -m coursedata fixture NAME DEST [--seed S] [--n-per-batch N] [--n-test N]

NAME is a registered data set (:mod:`coursedata.registry`): cifar10, mnist,
fashion_mnist, imagenet_val_25, styles, coco_captioning. ``fixture`` writes a
generated stand-in in the official format (``--n-per-batch``/``--n-test``: CIFAR-10 only).

The data directory defaults to the ``CVCOURSE_DATA_DIR`` setting (see
:mod:`coursedata`). Errors are reported in one line on stderr with exit code 1
(2 for bad command-line usage).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import ENV_VAR, DataNotFound, data_dir_origin, registry
from . import cifar10 as _cifar10
from .download import DownloadError, UnsafeArchiveError

DATASETS = tuple(registry.names())


def _build_parser() -> argparse.ArgumentParser:
    defaults = _cifar10._fixture_defaults()
    parser = argparse.ArgumentParser(
        prog="python -m coursedata",
        description=f"Course data tools. The data directory is ${ENV_VAR} "
        "(default: $XDG_CACHE_HOME/cvcourse or ~/.cache/cvcourse).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_download = sub.add_parser("download", help="download and verify an official dataset")
    p_download.add_argument("dataset", choices=DATASETS)
    p_download.add_argument("--data-dir", type=Path, default=None,
                            help=f"target directory (default: ${ENV_VAR} setting)")  # fmt: skip
    p_download.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p_where = sub.add_parser("where", help="print the data directory and what it holds")
    p_where.add_argument("--data-dir", type=Path, default=None,
                         help=f"directory to inspect (default: ${ENV_VAR} setting)")  # fmt: skip

    p_fixture = sub.add_parser(
        "fixture", help="write a small generated dataset in the official layout"
    )
    p_fixture.add_argument("dataset", choices=DATASETS)
    p_fixture.add_argument("dest", type=Path,
                           help="the data set's folder (e.g. cifar-10-batches-py), or a data directory for it")  # fmt: skip
    p_fixture.add_argument("--n-per-batch", type=int, default=defaults["n_per_batch"],
                           help="images per training batch (default: %(default)s)")  # fmt: skip
    p_fixture.add_argument("--n-test", type=int, default=defaults["n_test"],
                           help="images in the test batch (default: %(default)s)")  # fmt: skip
    p_fixture.add_argument("--seed", type=int, default=defaults["seed"],
                           help="random seed (default: %(default)s)")  # fmt: skip
    return parser


def _where(data_dir: Path | None) -> int:
    if data_dir is not None:
        root, origin = data_dir.expanduser(), "--data-dir"
    else:
        root, origin = data_dir_origin()
    print(f"data directory: {root} (from {origin})")
    if not root.is_dir():
        print("  (the directory does not exist yet)")
    for name in DATASETS:
        try:
            folder = registry.find(name, root)
        except DataNotFound:
            print(f"{name}: missing, graders generate a stand-in "
                  f"(get it with: python -m coursedata download {name})")
            continue
        names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        complete = _cifar10._is_complete(folder) if name == "cifar10" else True
        print(f"{name}: {'complete' if complete else 'partial'} at {folder}: {', '.join(names)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "where":
            return _where(args.data_dir)
        if args.command == "download":
            folder = registry.download(args.dataset, args.data_dir, progress=not args.no_progress)
            print(folder)
            return 0
        if args.command == "fixture" and args.dataset == "cifar10":
            folder = _cifar10.write_fixture(
                args.dest, n_per_batch=args.n_per_batch, n_test=args.n_test, seed=args.seed
            )
            print(folder)
            return 0
        if args.command == "fixture":
            folder_name = registry.get(args.dataset).folder
            dest = args.dest if args.dest.name == folder_name else args.dest / folder_name
            print(registry.generate(args.dataset, dest, seed=args.seed).folder)
            return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (DataNotFound, DownloadError, UnsafeArchiveError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":
    sys.exit(main())
