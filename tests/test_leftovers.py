"""Nothing outlives grading: a hostile class graded with ``grade-all -j 2``.

The class holds an honest submission and the corpus's leftover cases
(``tests/fixtures/hostile/leftover_*``): 512 MiB written into ``/dev/shm``,
System V segments, semaphores and queues, a process that forks and lets its
parent exit every few milliseconds (a new pid while the clean-up kills), a
double-forked daemon in its own session with an empty environment that
ignores signals, and a worker that sleeps forever beside a signal-proof
child. While ``autograder grade-all -j 2`` runs (the real CLI, in a
subprocess with a temporary folder of its own), the test records every
sandbox uid that appears in its process tree. When the command has exited:

- no process of any of those uids is left (nor any carrying the corpus's mark);
- no file in ``/dev/shm`` was added by the grading (checked at once, nothing awaited);
- no System V IPC object (``/proc/sysvipc/shm``, ``sem``, ``msg``) was added;
- the grading's temporary folder is empty (no scratch, build or staging folder);
- every uid was given back (no lease of the machine-wide table holds it);
- every submission got its complete report with the points of its honest part.

It needs a confined grader (root and namespaces); elsewhere it is skipped with
the reason the grader gives.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from leftover_checks import (
    marked_ipc,
    marked_shm,
    process_uids,
    remove_marked,
    shm_files,
    sysv_objects,
)
from test_hostile import (
    KIT,
    TOY,
    build_submission,
    hostile_processes,
    kill_processes,
    load_case,
    spec_of,
)

from autograder.sandbox import isolation_available
from autograder.sandbox.jail import UID_BASE

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"
CASES = ["leftover_shm", "leftover_sysv", "leftover_forker", "leftover_sleeper"]
POLL = 0.02  # seconds between two looks at the grading's process tree


class TreeWatch:
    """Records the uids (all four) of every process under ``root`` while it runs."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.uids: set[int] = set()
        self.looks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            procs = process_uids()
            tree = {self.root}
            grew = True
            while grew:  # descendants of root (pids only grow the set)
                grew = False
                for pid, (ppid, _, _) in procs.items():
                    if ppid in tree and pid not in tree:
                        tree.add(pid)
                        grew = True
            for pid in tree - {self.root}:
                if pid in procs:
                    self.uids.update(u for u in procs[pid][2] if u >= UID_BASE)
            self.looks += 1
            self._stop.wait(POLL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _class(tmp_path: Path) -> tuple[Path, dict[str, dict[str, float]]]:
    """The class folder and the expected scores per student and task."""
    subs = tmp_path / "class"
    subs.mkdir()
    expected = {}
    honest = subs / "honest"
    shutil.copytree(TOY / "source" / "toy", honest,
                    ignore=shutil.ignore_patterns("__pycache__"))
    full = {"add": 2.0, "relu": 3.0, "scaler": 5.0}
    expected["honest"] = dict(full)
    for name in CASES:
        case = load_case(HOSTILE / name)
        built = build_submission(case, spec_of(case), tmp_path / f"build-{name}")
        shutil.move(str(built), subs / name)
        expected[name] = {**full, **case.expect} if case.others_full else dict(case.expect)
    return subs, expected


def _leases() -> set[int]:
    from autograder.sandbox import uids

    try:
        state = json.loads((uids.STATE_DIR / "uids.json").read_text())
    except (OSError, ValueError):
        return set()
    return {int(u) for u in (state.get("leases") or {})}


def test_a_hostile_class_leaves_nothing_behind(tmp_path: Path) -> None:
    ok, note = isolation_available(sys.executable)
    if not ok:
        pytest.skip(f"workers cannot be confined here: {note}")
    assert (KIT / "leftovers.py").is_file()
    subs, expected = _class(tmp_path)
    # a short path: multiprocessing puts its fork server's socket under TMPDIR, and an
    # AF_UNIX path may not be longer than 107 bytes (pytest-xdist's tmp_path can be)
    grading_tmp = Path(tempfile.mkdtemp(prefix="leftovers-", dir="/tmp"))
    os.chmod(grading_tmp, 0o755)
    out = tmp_path / "out"
    shm_before = shm_files()
    ipc_before = set(sysv_objects())
    elsewhere = set(hostile_processes())
    env = {**os.environ, "TMPDIR": str(grading_tmp)}
    env.pop("AUTOGRADER_COURSE_ROOT", None)
    cmd = [sys.executable, "-m", "autograder", "grade-all", str(subs), "--assignment", "toy",
           "--suite-dir", str(TOY / "suite"), "--course-root", str(TOY), "--output", str(out),
           "-j", "2", "--no-progress", "--no-gradebook", "--timeout", "3", "--seed", "7"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    watch = TreeWatch(proc.pid)
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        watch.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        procs = process_uids()
        survivors = {pid: uids for pid, (_, _, uids) in procs.items()
                     if set(uids) & watch.uids}
        marked = [pid for pid in hostile_processes() if pid not in elsewhere]
        shm_added = {n: u for n, u in shm_files().items() if n not in shm_before}
        ipc_added = [o for o in sysv_objects() if o not in ipc_before]
        temp_left = sorted(p.name for p in grading_tmp.iterdir())
        still_leased = watch.uids & _leases()
        corpus_left = [*marked_shm(), *marked_ipc()]
    finally:  # a failed run must not leave its mess to the next one
        kill_processes([pid for pid in hostile_processes() if pid not in elsewhere])
        remove_marked()
        shutil.rmtree(grading_tmp, ignore_errors=True)

    assert proc.returncode == 0, output[-3000:]
    assert watch.looks > 10 and watch.uids, "the watch saw no sandbox uid: it proves nothing"
    assert not survivors, f"processes of sandbox uids survived the grading: {survivors}"
    assert not marked, f"processes started by the submissions survived: {marked}"
    assert not shm_added, f"files the grading left in /dev/shm: {shm_added}"
    assert not ipc_added, f"System V IPC objects the grading left: {ipc_added}"
    assert not corpus_left, corpus_left
    assert not temp_left, f"the grading left these in its temporary folder: {temp_left}"
    assert not still_leased, f"uids never given back: {sorted(still_leased)}"

    with open(out / "gradebook.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    for student, tasks in expected.items():
        data = json.loads((out / student / "results.json").read_text())
        assert not data["extra_data"].get("internal_error"), (student, data["output"][-2000:])
        assert data["extra_data"]["isolated"] is True, student
        got = {t["name"].split(":")[0]: t["score"] for t in data["tests"]}
        assert got == tasks, (student, got)
        assert float(rows[student]["score"]) == sum(tasks.values()), rows[student]
