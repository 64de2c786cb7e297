"""GitHub Classroom: the workflow template and ``autograder classroom-fetch``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "templates" / "github-classroom" / "grade-classroom.yml"
TOY = REPO / "tests" / "fixtures" / "toy"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@example.org",
           "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@example.org"}


def _workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_workflow_cannot_be_driven_by_students() -> None:
    wf = _workflow()
    assert set(wf["on"]) <= {"workflow_dispatch", "schedule"}, \
        "a push or pull_request trigger would let student code choose when and what runs"
    assert wf["permissions"] == {"contents": "read"}
    steps = wf["jobs"]["grade"]["steps"]
    with_secret = [s for s in steps if "secrets." in json.dumps(s)]
    assert len(with_secret) == 1 and "classroom-fetch" in with_secret[0]["run"]
    grade = next(s for s in steps if "grade-all" in s.get("run", ""))
    assert "secrets" not in json.dumps(grade) and "CLASSROOM_TOKEN" not in json.dumps(grade)
    assert grade["run"].startswith("sudo "), "grading must run as root to confine the workers"
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout"))
    assert "repository" not in checkout.get("with", {}), "check out the course, not a student repo"
    assert checkout["with"]["persist-credentials"] is False


def _student_repo(root: Path, login: str, wrong: bool) -> None:
    repo = root / f"hw1-{login}"
    shutil.copytree(TOY / "source" / "toy", repo)
    if wrong:
        ops = repo / "mylib" / "ops.py"
        ops.write_text(ops.read_text().replace("return a + b", "return a - b"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "hw"]):
        subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True)


def test_fetch_clones_every_roster_repo_and_survives_a_missing_one(tmp_path: Path) -> None:
    remote = tmp_path / "github"
    _student_repo(remote, "alice", wrong=False)
    _student_repo(remote, "bob", wrong=True)
    roster = tmp_path / "roster.txt"
    roster.write_text("# logins\nalice\nbob\ncarol  # never accepted the assignment\n")
    dest = tmp_path / "submissions"
    env = {**os.environ, "CLASSROOM_TOKEN": "s3cr3t-token"}
    res = subprocess.run(
        [sys.executable, "-m", "autograder", "classroom-fetch", "--org", "course",
         "--prefix", "hw1-", "--roster", str(roster), "--dest", str(dest),
         "--url-template", f"file://{remote}/{{repo}}"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "fetched 2 of 3" in res.stdout
    assert "s3cr3t-token" not in res.stdout + res.stderr
    fetched = {r["student"]: r for r in json.loads((dest / "fetched.json").read_text())}
    assert fetched["alice"]["ok"] and fetched["bob"]["ok"] and not fetched["carol"]["ok"]
    assert len(fetched["alice"]["commit"]) == 40
    assert "git clone failed" in fetched["carol"]["message"]
    assert (dest / "alice" / "mylib" / "ops.py").is_file()
    assert not (dest / "alice" / ".git").exists() and not (dest / "carol").exists()
    # the fetched folders are ordinary submissions
    from autograder.runner import grade

    scores = {s: grade(dest / s, "toy", suite_dir=TOY / "suite", course_root=TOY).score
              for s in ("alice", "bob")}
    assert scores == {"alice": 10, "bob": 8}


def test_fetch_rejects_a_bad_roster(tmp_path: Path) -> None:
    roster = tmp_path / "roster.txt"
    roster.write_text("alice\n../etc\n")
    res = subprocess.run(
        [sys.executable, "-m", "autograder", "classroom-fetch", "--org", "o", "--prefix", "p-",
         "--roster", str(roster), "--dest", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2
    assert "is not a GitHub login" in res.stderr and "Traceback" not in res.stderr
