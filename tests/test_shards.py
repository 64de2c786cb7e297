"""Grading a class in shards: ``grade-all --shard K/N`` and ``autograder merge``.

Uses the toy assignment of tests/fixtures/toy (a grading takes about a
second). The class is chosen so that each of 3 shards holds students.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from autograder.batch import GradeOptions, Shard, grade_all
from autograder.merge import MergeError, merge
from autograder.shards import MANIFEST_FILE, read_manifest, shard_of

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "fixtures" / "toy"
SUITE = TOY / "suite"
REFERENCE = TOY / "source" / "toy"
TOY_OPTIONS = GradeOptions(suite_dir=str(SUITE), course_root=str(TOY))
TEMPLATES = REPO / "templates"
N = 3


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def toy_submission(dest: Path) -> Path:
    shutil.copytree(REFERENCE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_COURSE_ROOT"}
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def rows_without_timing(path: Path) -> list[list[str]]:
    """The gradebook's rows with the ``seconds`` column (a timing) left out."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    col = rows[0].index("seconds")
    return [r[:col] + r[col + 1:] for r in rows]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Seven toy submissions graded once whole and once in 3 shards (shard 2 by the CLI)."""
    base = tmp_path_factory.mktemp("sharded")
    subs = base / "submissions"
    subs.mkdir()
    toy_submission(subs / "alice")  # correct
    bob = toy_submission(subs / "bob")  # hidden task wrong
    edit(bob, "mylib/ops.py", "return np.maximum(x, 0)", "return x")
    carol = toy_submission(base / "carol-src")  # correct, zipped
    with zipfile.ZipFile(subs / "carol.zip", "w") as zf:
        for path in sorted(carol.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(carol).as_posix())
    (subs / "dave.zip").write_bytes(b"not a zip")  # a submission problem
    erin = toy_submission(subs / "erin")  # after_due_date task wrong
    edit(erin, "mylib/model.py", 'return x * self.params["k"]', "return x")
    toy_submission(subs / "hugo")
    june = toy_submission(subs / "june")  # visible task wrong
    edit(june, "mylib/ops.py", "return a + b", "return a - b")
    by_shard = {k: sorted(p.name.removesuffix(".zip") for p in subs.iterdir()
                          if shard_of(p.name.removesuffix(".zip"), N) == k) for k in range(N)}
    assert all(by_shard.values()), by_shard  # the class is chosen so that no shard is empty

    whole = grade_all(subs, "toy", output=base / "whole", jobs=2, options=TOY_OPTIONS,
                      gradebook=base / "whole.db")
    assert whole.complete, [o.message for o in whole.failed]
    outs = [base / f"shard{k}" for k in range(N)]
    results = {k: grade_all(subs, "toy", output=outs[k], jobs=2, options=TOY_OPTIONS,
                            shard=Shard(k, N)) for k in range(N - 1)}
    common = ["--assignment", "toy", "--suite-dir", str(SUITE), "--course-root", str(TOY)]
    proc = cli("grade-all", str(subs), *common, "--output", str(outs[-1]), "-j", "2",
               "--no-progress", "--shard", f"{N - 1}/{N}", cwd=base)
    assert proc.returncode == 0, proc.stderr
    assert f"students in shard {N - 1}/{N}: " in proc.stdout
    return {"base": base, "subs": subs, "whole": whole, "outs": outs, "results": results,
            "by_shard": by_shard, "common": common}


def test_shards_merge_into_the_whole_class_gradebook(sharded: dict, tmp_path: Path) -> None:
    base, outs, by_shard = sharded["base"], sharded["outs"], sharded["by_shard"]
    for k, out in enumerate(outs):
        m = read_manifest(out)
        assert (m.shard, m.shards, m.students) == (k, N, by_shard[k])
        assert m.class_count == 7
        assert {p.name for p in out.iterdir() if p.is_dir()} == set(by_shard[k])
    for k, result in sharded["results"].items():
        assert [o.student for o in result.outcomes] == by_shard[k] and result.complete
        assert result.nbgrader_gradebook is None  # shards leave it to merge

    merged = base / "merged"
    proc = cli("merge", *map(str, reversed(outs)), "--output", str(merged),
               "--gradebook", str(base / "merged.db"), cwd=base)
    assert proc.returncode == 0, proc.stderr
    assert "7 students from 3 shard(s), 0 failed" in proc.stdout
    whole = sharded["whole"].output
    assert rows_without_timing(merged / "gradebook.csv") == \
        rows_without_timing(whole / "gradebook.csv")
    # byte-identical but for the seconds column: same lines, same layout
    merged_lines = (merged / "gradebook.csv").read_bytes().splitlines()
    whole_lines = (whole / "gradebook.csv").read_bytes().splitlines()
    assert merged_lines[0] == whole_lines[0] and len(merged_lines) == len(whole_lines) == 8
    scores = {r[0]: r[1] for r in rows_without_timing(merged / "gradebook.csv")[1:]}
    assert scores == {"alice": "10", "bob": "7", "carol": "10", "dave": "0", "erin": "5",
                      "hugo": "10", "june": "8"}
    for k, out in enumerate(outs):  # each student's folder is the shard's, copied whole
        for student in by_shard[k]:
            for name in ("batch.json", "results.json", "report.json", "feedback.html"):
                assert (merged / student / name).read_bytes() == \
                    (out / student / name).read_bytes(), (student, name)
    m = read_manifest(merged)
    assert (m.shard, m.shards, m.students) == (0, 1, sorted(scores))
    assert m.grader_key == read_manifest(whole).grader_key

    # nbgrader's gradebook: the same scores as one grade-all writes
    from nbgrader.api import Gradebook

    from autograder.nbgrader_gradebook import db_url

    def book(path: Path) -> dict[tuple[str, str], float]:
        with Gradebook(db_url(path)) as gb:
            return {(s, t): gb.find_grade(t, "mylib_autograder", "toy", s).auto_score
                    for s in scores for t in ("add", "relu", "scaler")}

    assert book(base / "merged.db") == book(base / "whole.db")
    assert book(base / "merged.db")[("june", "add")] == 0

    # the merged output is a grade-all output: a whole-class run into it regrades nothing
    again = grade_all(sharded["subs"], "toy", output=merged, jobs=2, options=TOY_OPTIONS,
                      gradebook=False)
    assert not again.graded and len(again.skipped) == 7


def test_shard_of_is_a_stable_hash_of_the_id() -> None:
    ids = [f"student{i:04d}" for i in range(300)]
    for n in (1, 2, 3, 7):
        for s in ids[:20]:
            expected = int(hashlib.sha256(s.encode()).hexdigest()[:16], 16) % n
            assert shard_of(s, n) == expected, (s, n)
        sizes = [sum(shard_of(s, n) == k for s in ids) for k in range(n)]
        assert min(sizes) > 300 / n * 0.6, (n, sizes)  # roughly even
    assert [Shard.parse(t) for t in ("0/1", "2/3", " 4/10 ")] == \
        [Shard(0, 1), Shard(2, 3), Shard(4, 10)]
    for bad in ("3/3", "1/0", "-1/3", "1", "a/b", "1/2/3", ""):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def test_adding_students_moves_no_one(sharded: dict, tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    shutil.copytree(sharded["subs"], subs)
    toy_submission(subs / "kim")  # new late student
    new = {"kim"}
    for n in range(1, 60):  # and a crowd: nobody already placed changes shard
        new.add(f"late{n}")
    for k, out in enumerate(sharded["outs"]):
        before = set(read_manifest(out).students)
        assert {s for s in [*before, *new] if Shard(k, N).holds(s)} - new == before
    k = shard_of("kim", N)
    out = tmp_path / "shard"
    shutil.copytree(sharded["outs"][k], out)
    result = grade_all(subs, "toy", output=out, jobs=2, options=TOY_OPTIONS, shard=Shard(k, N))
    assert [o.student for o in result.graded] == ["kim"]  # the others are kept, not moved
    assert read_manifest(out).students == sorted([*sharded["by_shard"][k], "kim"])
    # this shard saw another class than the others: merging them is refused
    others = [o for i, o in enumerate(sharded["outs"]) if i != k]
    with pytest.raises(MergeError, match="shards saw different classes"):
        merge([*others, out], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_merge_refuses_shards_that_do_not_fit(sharded: dict, tmp_path: Path) -> None:
    outs, base = sharded["outs"], sharded["base"]
    dest = tmp_path / "merged"
    with pytest.raises(MergeError, match=r"missing shard\(s\) 1/3 \(got 2 of 3\)"):
        merge([outs[0], outs[2]], dest)
    with pytest.raises(MergeError, match="shard 0/3 given twice"):
        merge([outs[0], outs[1], outs[2], outs[0]], dest)
    with pytest.raises(MergeError, match="must be outside the shard output"):
        merge(outs, outs[0] / "merged")

    # a shard graded with other options (here a time limit): refused by its grader key
    other = tmp_path / "other1"
    graded = grade_all(sharded["subs"], "toy", output=other, jobs=2,
                       options=replace(TOY_OPTIONS, time_limit=100), shard=Shard(1, N))
    assert graded.complete
    with pytest.raises(MergeError, match="different suites, options or reference"):
        merge([outs[0], other, outs[2]], dest)

    # a student in two shards (a shard folder edited, or copied together by hand)
    dup = tmp_path / "dup2"
    shutil.copytree(outs[2], dup)
    stray = sharded["by_shard"][0][0]
    shutil.copytree(outs[0] / stray, dup / stray)
    manifest = json.loads((dup / MANIFEST_FILE).read_text())
    manifest["students"] = sorted([*manifest["students"], stray])
    (dup / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(MergeError, match=f"student {stray} is in two shards"):
        merge([outs[0], outs[1], dup], dest)
    manifest["students"] = ["../escape"]  # a damaged manifest never names a path outside
    (dup / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(MergeError, match="not a plain folder name"):
        merge([outs[0], outs[1], dup], dest)

    # a shard that lost a student's report, or whose report came from another grader
    lost = tmp_path / "lost2"
    shutil.copytree(outs[2], lost)
    victim = sharded["by_shard"][2][0]
    (lost / victim / "batch.json").unlink()
    with pytest.raises(MergeError, match=f"no complete report of {victim}"):
        merge([outs[0], outs[1], lost], dest)
    shutil.copytree(other / "hugo", lost / victim, dirs_exist_ok=True)
    batch = json.loads((lost / victim / "batch.json").read_text())
    (lost / victim / "batch.json").write_text(json.dumps({**batch, "student": victim}))
    with pytest.raises(MergeError, match="graded by another grader than its shard"):
        merge([outs[0], outs[1], lost], dest)
    assert not dest.exists()  # nothing is written when refused

    # an interrupted shard leaves no manifest: merge does not take its half-done folder
    cut = tmp_path / "cut1"
    shutil.copytree(outs[1], cut)

    def interrupt(event: object) -> None:
        if getattr(event, "kind", "") == "graded":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade_all(sharded["subs"], "toy", output=cut, jobs=1, options=TOY_OPTIONS, force=True,
                  shard=Shard(1, N), progress=interrupt)
    with pytest.raises(MergeError, match="is not a grade-all output"):
        merge([outs[0], cut, outs[2]], dest)

    # the command line: one line, exit 2, no traceback
    (tmp_path / "plain").mkdir()
    for args, needle in [
        ((str(outs[0]), str(outs[1])), "missing shard(s) 2/3"),
        ((str(outs[0]), str(other), str(outs[2])), "different suites, options or reference"),
        ((str(tmp_path / "plain"),), "is not a grade-all output"),
    ]:
        bad = cli("merge", *args, "--output", str(dest), cwd=tmp_path)
        assert bad.returncode == 2, (args, bad.stderr)
        assert needle in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    for extra, needle in [(["--shard", "3/3"], "K must be in 0..N-1"),
                          (["--shard", "0/3", "--gradebook", str(base / "x.db")],
                           "a shard does not write nbgrader's gradebook")]:
        bad = cli("grade-all", str(sharded["subs"]), *sharded["common"], *extra,
                  "--output", str(dest), cwd=tmp_path)
        assert bad.returncode == 2, (extra, bad.stderr)
        assert needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# --- the templates: they parse, hold together, and (Slurm, Kubernetes) their
# commands grade and merge a class when run here against the toy assignment.

def autograder_shim(bin_dir: Path) -> Path:
    """An ``autograder`` on PATH that grades the toy assignment (its suite is not installed)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "autograder"
    shim.write_text(
        f"#!/bin/sh\nif [ \"$1\" = grade-all ]; then\n"
        f"  exec {sys.executable} -m autograder \"$@\" --suite-dir {SUITE} --course-root {TOY}\n"
        f"fi\nexec {sys.executable} -m autograder \"$@\"\n")
    shim.chmod(0o755)
    return shim


def small_class(dest: Path) -> Path:
    dest.mkdir(parents=True)
    toy_submission(dest / "alice")
    (dest / "dave.zip").write_bytes(b"not a zip")
    return dest


def expected_rows(tmp_path: Path, subs: Path) -> list[list[str]]:
    whole = grade_all(subs, "toy", output=tmp_path / "whole", jobs=1, options=TOY_OPTIONS,
                      gradebook=False)
    return rows_without_timing(whole.gradebook_csv)


def test_github_actions_template() -> None:
    flow = yaml.safe_load((TEMPLATES / "github-actions" / "grade-sharded.yml").read_text())
    jobs = flow["jobs"]
    assert jobs["grade"]["needs"] == "fetch" and jobs["merge"]["needs"] == "grade"
    shards = jobs["grade"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(len(shards))) and len(shards) > 1
    grade = next(s for s in jobs["grade"]["steps"] if "grade-all" in s.get("run", ""))
    assert grade["env"]["SHARD"] == "${{ matrix.shard }}/${{ strategy.job-total }}"
    assert '--shard "$SHARD"' in grade["run"] and '--output "$OUT"' in grade["run"]
    assert "--no-gradebook" in grade["run"]
    upload = next(s for s in jobs["grade"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["path"].rstrip("/") == grade["env"]["OUT"]
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}"
    download = next(s for s in jobs["merge"]["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"pattern": "shard-*", "path": "shards"}
    merge_step = next(s for s in jobs["merge"]["steps"] if "autograder merge" in s.get("run", ""))
    assert "shards/shard-*" in merge_step["run"]
    token_steps = [s for j in jobs.values() for s in j["steps"]
                   if "secrets." in json.dumps(s)]
    assert len(token_steps) == 1 and "classroom-fetch" in token_steps[0]["run"]


def test_slurm_template_grades_and_merges(tmp_path: Path) -> None:
    slurm = TEMPLATES / "slurm"
    for script in slurm.iterdir():
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, (script.name, proc.stderr)
    subs = small_class(tmp_path / "subs")
    bin_dir = tmp_path / "bin"
    shim = autograder_shim(bin_dir)
    # a stand-in sbatch: runs an array's tasks, then the dependent job, in order
    log = tmp_path / "sbatch.log"
    (bin_dir / "sbatch").write_text(f"""#!{sys.executable}
import os, subprocess, sys
args = sys.argv[1:]
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
script = args[-1]
with open({str(log)!r}, "a") as fh:
    fh.write(" ".join(args) + "\\n")
ids = [None]
if "array" in opts:
    lo, hi = opts["array"].split("%")[0].split("-")
    ids = range(int(lo), int(hi) + 1)
for i in ids:
    env = dict(os.environ, SLURM_CPUS_PER_TASK="1")
    if i is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(i)
    subprocess.run(["bash", script], cwd=opts["chdir"], env=env, check=True, stdout=sys.stderr)
print("4242;cluster")
""")
    (bin_dir / "sbatch").chmod(0o755)
    work = tmp_path / "work"
    env = {**{k: v for k, v in os.environ.items() if k != "AUTOGRADER_COURSE_ROOT"},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COURSE": str(REPO),
           "ASSIGNMENT": "toy", "SUBMISSIONS": str(subs), "WORK": str(work), "SHARDS": "3",
           "AUTOGRADER": str(shim), "GRADE_ARGS": "--feedback released"}
    proc = subprocess.run(["bash", str(slurm / "submit.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "job array 4242, merge as job 4242" in proc.stdout
    calls = log.read_text().splitlines()
    assert "--array=0-2" in calls[0] and "--dependency=afterok:4242" in calls[1]
    assert sorted(p.name for p in (work / "shards").iterdir()) == [f"shard-{k}" for k in range(3)]
    assert read_manifest(work / "grades").audience == "released"
    assert rows_without_timing(work / "grades" / "gradebook.csv") == \
        expected_rows(tmp_path, subs)
    bad = subprocess.run(["bash", str(slurm / "submit.sh")], env={**env, "SHARDS": "0"},
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "positive integer" in bad.stderr


def test_kubernetes_template_commands_grade_and_merge(tmp_path: Path) -> None:
    grade_job = yaml.safe_load((TEMPLATES / "kubernetes" / "grade-shards.yaml").read_text())
    merge_job = yaml.safe_load((TEMPLATES / "kubernetes" / "merge.yaml").read_text())
    spec = grade_job["spec"]
    assert grade_job["kind"] == merge_job["kind"] == "Job"
    assert spec["completionMode"] == "Indexed"
    grade_c = spec["template"]["spec"]["containers"][0]
    merge_c = merge_job["spec"]["template"]["spec"]["containers"][0]
    genv = {e["name"]: e["value"] for e in grade_c["env"]}
    menv = {e["name"]: e["value"] for e in merge_c["env"]}
    assert int(genv["SHARDS"]) == int(menv["SHARDS"]) == spec["completions"] > 1
    assert grade_c["image"] == merge_c["image"]
    assert grade_c["volumeMounts"][0]["mountPath"] == merge_c["volumeMounts"][0]["mountPath"] \
        == "/work"
    # run the pods' commands here: /work is a temporary folder, one pod after the other
    work = tmp_path / "work"
    subs = small_class(work / "submissions")
    bin_dir = tmp_path / "bin"
    autograder_shim(bin_dir)
    base_env = {**{k: v for k, v in os.environ.items() if k != "AUTOGRADER_COURSE_ROOT"},
                "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def pod(container: dict, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        command = [*container["command"], *container["args"]]
        command = [c.replace("/work/", f"{work}/") for c in command]
        return subprocess.run(command, env={**base_env, **env}, capture_output=True,
                              text=True, timeout=300)

    for k in range(spec["completions"]):
        proc = pod(grade_c, {**genv, "ASSIGNMENT": "toy", "JOB_COMPLETION_INDEX": str(k)})
        assert proc.returncode == 0, (k, proc.stderr)
    proc = pod(merge_c, menv)
    assert proc.returncode == 0, proc.stderr
    assert f"from {spec['completions']} shard(s)" in proc.stdout
    assert rows_without_timing(work / "grades" / "gradebook.csv") == \
        expected_rows(tmp_path, subs)
