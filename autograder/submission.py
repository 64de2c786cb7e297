"""Submission intake: copy a directory or safely extract a zip, then check its layout.

Zip members with absolute paths, ``..`` components, links, encryption, or
too many/too large files are refused. A single wrapping folder (students often
zip the folder itself) is unwrapped, ``__MACOSX`` and AppleDouble files are
ignored. Every problem raises :class:`SubmissionProblem` with a message meant
for the student.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder import tree
from autograder.config import AssignmentSpec

MAX_FILES = 5000
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_FILE_BYTES = 50 * 1024 * 1024
SKIP_DIRS = tree.SKIP_DIRS


class SubmissionProblem(Exception):
    """The submission cannot be graded; ``message`` explains why to the student."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass
class Submission:
    """A prepared submission: ``root`` holds the library package."""

    root: Path
    original: Path
    kind: str
    notes: list[str] = field(default_factory=list)


def _skip(parts: tuple[str, ...]) -> bool:
    return not tree.counts(parts)


def _copy_directory(src: Path, dest: Path, notes: list[str], links: set[str]) -> None:
    count = 0
    total = 0
    try:
        for entry in tree.walk(src):
            rel = Path(*entry.rel.parts)
            if entry.kind == "link":
                notes.append(f"ignored the symbolic link {rel}")
                links.add(entry.rel.as_posix())
            elif entry.kind == "dir":
                (dest / rel).mkdir(parents=True, exist_ok=True)
            else:
                count += 1
                total += entry.size
                if count > MAX_FILES:
                    raise SubmissionProblem(f"the submission has more than {MAX_FILES} files")
                if entry.size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                    raise SubmissionProblem(
                        f"the submission is too large (limit {MAX_TOTAL_BYTES >> 20} MB in all, "
                        f"{MAX_FILE_BYTES >> 20} MB per file): {rel}"
                    )
                _copy_file(entry.path, dest / rel, rel)
    except tree.TreeProblem as problem:
        raise SubmissionProblem(problem.message) from None


def _copy_file(src: Path, target: Path, rel: Path) -> None:
    """Copy one regular file (opened without following links, never a FIFO)."""
    try:
        fd = tree.open_regular(src)
    except OSError as exc:
        raise SubmissionProblem(f"cannot read {rel} in the submission "
                                f"({exc.strerror or exc})") from None
    written = 0
    with os.fdopen(fd, "rb") as fin, open(target, "wb") as fout:
        while chunk := fin.read(1 << 20):
            written += len(chunk)
            if written > MAX_FILE_BYTES:  # it grew after it was listed
                raise SubmissionProblem(f"{rel} is larger than {MAX_FILE_BYTES >> 20} MB")
            fout.write(chunk)


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    name = info.filename
    if "\\" in name:
        name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise SubmissionProblem(f"the zip file contains an absolute path: {info.filename!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SubmissionProblem(f"the zip file contains a path with '..': {info.filename!r}")
    if not parts:
        return None
    return PurePosixPath(*parts)


def _extract_zip(src: Path, dest: Path, notes: list[str]) -> None:
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # e.g. a bad UTF-8 name
        raise SubmissionProblem(f"the submission is not a valid zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if not any(not i.is_dir() for i in infos):
            raise SubmissionProblem(
                "the zip file is empty (it holds no files); zip the assignment folder with "
                "its files in it"
            )
        if len(infos) > MAX_FILES:
            raise SubmissionProblem(f"the zip file has more than {MAX_FILES} members")
        plan = []
        for info in infos:
            rel = _member_path(info)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                raise SubmissionProblem(f"the zip file contains a symbolic link: {info.filename!r}")
            if info.flag_bits & 0x1:
                raise SubmissionProblem(f"the zip file is encrypted: {info.filename!r}")
            if rel is None or _skip(rel.parts) or rel.parts[0] == "__MACOSX":
                continue
            if mode not in (0, stat.S_IFREG, stat.S_IFDIR) and not info.is_dir():
                raise SubmissionProblem(f"the zip file contains a special file: {info.filename!r}")
            try:
                tree.check_path(rel.parts)
            except tree.TreeProblem as problem:
                raise SubmissionProblem(problem.message) from None
            plan.append((info, rel))
        _check_clashes(plan)
        total = 0
        for info, rel in plan:
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if info.file_size > MAX_FILE_BYTES:
                raise SubmissionProblem(f"{rel} is larger than {MAX_FILE_BYTES >> 20} MB")
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as fin, open(target, "wb") as fout:
                    while chunk := fin.read(1 << 20):
                        written += len(chunk)
                        total += len(chunk)
                        if written > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                            raise SubmissionProblem(
                                f"the zip file expands to more than the limit "
                                f"({MAX_TOTAL_BYTES >> 20} MB in all, "
                                f"{MAX_FILE_BYTES >> 20} MB per file)"
                            )
                        fout.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                    NotImplementedError) as exc:
                raise SubmissionProblem(f"cannot extract {rel} from the zip file ({exc})") from None


def _check_clashes(plan: list[tuple[zipfile.ZipInfo, PurePosixPath]]) -> None:
    """Refuse a zip where one path is both a file and a folder, or two files share a path."""
    files: dict[PurePosixPath, str] = {}
    folders: set[PurePosixPath] = set()
    for info, rel in plan:
        folders.update(rel.parents)
        if info.is_dir():
            folders.add(rel)
        elif rel in files:
            raise SubmissionProblem(f"the zip file holds two files named {str(rel)!r}")
        else:
            files[rel] = info.filename
        if len(folders) > MAX_FILES:
            raise SubmissionProblem(f"the zip file makes more than {MAX_FILES} folders")
    for rel in sorted(files):
        if rel in folders:
            raise SubmissionProblem(f"the zip file holds both a file and a folder named "
                                    f"{str(rel)!r}; rename one of them")


def _find_root(base: Path, library: str, notes: list[str]) -> Path:
    if (base / library).is_dir():
        return base
    entries = [p for p in base.iterdir() if p.name not in SKIP_DIRS and not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / library).is_dir():
        notes.append(f"used the folder {entries[0].name}/ at the top of the submission")
        return entries[0]
    listing = list(tree.walk(base))
    found = sorted(
        (base / Path(*e.rel.parent.parts) for e in listing
         if e.kind == "dir" and e.rel.name == library and len(e.rel.parts) <= 4
         and (e.path / "__init__.py").is_file()),
        key=lambda p: len(p.parts),
    )
    if found and (len(found) == 1 or len(found[0].parts) < len(found[1].parts)):
        notes.append(f"found the {library}/ package in {found[0].relative_to(base)}/")
        return found[0]
    message = (f"could not find the {library}/ package folder in the submission; submit the "
               f"assignment folder (or a zip of it) with {library}/ at its top level")
    notebooks = sorted(str(e.rel) for e in listing
                       if e.kind == "file" and e.rel.name.endswith(".ipynb"))
    if notebooks:
        shown = ", ".join(notebooks[:5]) + (", ..." if len(notebooks) > 5 else "")
        message += (f" (found the notebook(s) {shown}, but the grader imports your code "
                    f"from {library}/, it does not run notebooks)")
    raise SubmissionProblem(message)


def _make_readable(root: Path) -> None:
    os.chmod(root, 0o755)
    for entry in tree.walk(root, skip=False):
        if entry.kind != "link":
            os.chmod(entry.path, 0o755 if entry.kind == "dir" else 0o644)


def prepare_submission(path: str | os.PathLike[str], dest_dir: str | os.PathLike[str],
                       spec: AssignmentSpec) -> Submission:
    """Copy or extract the submission at ``path`` into ``dest_dir`` and check it.

    ``dest_dir`` must be a fresh (empty or missing) directory. The copy is made
    world-readable (not writable) so an unprivileged worker can import it.
    Raises :class:`SubmissionProblem`.
    """
    src = Path(path)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    notes: list[str] = []
    links: set[str] = set()
    if src.is_dir():
        kind = "directory"
        _copy_directory(src, dest, notes, links)
    elif src.is_file():
        kind = "zip"
        if not zipfile.is_zipfile(src):
            if src.suffix.lower() == ".ipynb":
                raise SubmissionProblem(
                    f"{src.name} is a notebook: the grader imports your code from "
                    f"{spec.library}/, so submit the assignment folder (or a zip of it) with "
                    f"{spec.library}/ at its top level"
                )
            raise SubmissionProblem(f"{src.name} is not a zip file or a directory")
        _extract_zip(src, dest, notes)
    elif os.path.lexists(src):  # a FIFO, socket, device or dangling link: never opened
        raise SubmissionProblem(f"the submission {src.name} is not a zip file or a directory")
    else:
        raise SubmissionProblem(f"the submission {src} does not exist")
    try:
        _make_readable(dest)
        root = _find_root(dest, spec.library, notes)
    except tree.TreeProblem as problem:  # the copy holds only what the limits allowed
        raise SubmissionProblem(problem.message) from None
    missing = [r for r in spec.required if not (root / r).is_file()]
    if missing:
        hints = []
        for r in missing:
            if (root / r).relative_to(dest).as_posix() in links:
                hints.append(f"{r} is a symbolic link, which the grader does not follow: "
                             "submit the file itself")
            notebook = (root / r).with_suffix(".ipynb")
            if r.endswith(".py") and notebook.is_file():
                hints.append(f"found {notebook.relative_to(root)} instead: submit the module "
                             f"{r}, not a notebook")
        raise SubmissionProblem(
            "required files are missing from the submission: " + ", ".join(missing)
            + (f" ({'; '.join(hints)})" if hints else "")
        )
    return Submission(root=root, original=src, kind=kind, notes=notes)
