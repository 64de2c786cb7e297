"""GitHub Classroom: fetch the students' repositories into a folder for batch grading.

The grading runs in the *instructor's* repository (the one holding the hidden
suites and the reference), never in the students' ones: a workflow in a
student's repository is code the student controls, so it could print any
score or leak any secret given to it. The template
``templates/github-classroom/grade-classroom.yml`` calls, in order:

1. ``autograder classroom-fetch``: clone every repository of the classroom
   (``ORG/PREFIX<login>``, found with the GitHub API or listed in a roster
   file) with a read-only token, keep the working tree without ``.git`` as
   ``DEST/<login>/`` and record the commit graded in ``DEST/fetched.json``;
2. ``autograder grade-all DEST ...``: grade every folder, confined.

The token is passed to git in the environment (``GIT_CONFIG_*``), never on a
command line or in a URL, and only to the fetch step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["DEFAULT_URL_TEMPLATE", "FetchResult", "fetch_all", "list_repositories",
           "read_roster"]

DEFAULT_URL_TEMPLATE = "https://github.com/{org}/{repo}.git"
DEFAULT_API = "https://api.github.com"
TOKEN_ENV = ("CLASSROOM_TOKEN", "GITHUB_TOKEN")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class ClassroomError(Exception):
    """A problem that stops the whole fetch (bad roster, API refused)."""


@dataclass
class FetchResult:
    """One repository: where it went, which commit, or why it failed."""

    student: str
    repo: str
    ok: bool
    commit: str = ""
    message: str = ""


def token_from_env() -> str | None:
    """The token from ``$CLASSROOM_TOKEN`` or ``$GITHUB_TOKEN`` (None when unset)."""
    for name in TOKEN_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def read_roster(path: str | os.PathLike[str]) -> list[str]:
    """Student logins, one per line (``#`` comments and blank lines ignored)."""
    logins = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _NAME.match(line):
            raise ClassroomError(f"{path}: {line!r} is not a GitHub login")
        logins.append(line)
    return logins


def list_repositories(org: str, prefix: str, token: str | None,
                      api: str = DEFAULT_API) -> list[str]:
    """Names of the organisation's repositories starting with ``prefix`` (paginated)."""
    names: list[str] = []
    page = 1
    while True:
        query = urllib.parse.urlencode({"per_page": 100, "page": page, "type": "all"})
        req = urllib.request.Request(f"{api}/orgs/{urllib.parse.quote(org)}/repos?{query}")
        req.add_header("Accept", "application/vnd.github+json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - fixed https API
                batch = json.load(resp)
        except (urllib.error.URLError, ValueError) as exc:
            raise ClassroomError(f"listing the repositories of {org} failed: {exc}") from None
        if not isinstance(batch, list):
            raise ClassroomError(f"unexpected answer from the GitHub API: {batch!r:.200}")
        names += [r["name"] for r in batch
                  if isinstance(r, dict) and str(r.get("name", "")).startswith(prefix)]
        if len(batch) < 100:
            return sorted(names)
        page += 1


def _git_env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if token:
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: Bearer {token}")
    return env


def fetch_one(org: str, repo: str, student: str, dest: Path, *, token: str | None,
              url_template: str = DEFAULT_URL_TEMPLATE, timeout: float = 300) -> FetchResult:
    """Clone ``repo`` and leave its working tree (no ``.git``) at ``dest/<student>``."""
    url = url_template.format(org=org, repo=repo, student=student)
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        clone = Path(tmp) / "clone"
        try:
            proc = subprocess.run(
                ["git", "clone", "--quiet", "--depth", "1", "--no-tags", url, str(clone)],
                env=_git_env(token), capture_output=True, text=True, timeout=timeout,
                check=False)
        except subprocess.TimeoutExpired:
            return FetchResult(student, repo, False, message=f"git clone timed out ({timeout:g} s)")
        if proc.returncode != 0:
            err = (proc.stderr or "").strip().splitlines()
            reason = err[-1] if err else f"exit code {proc.returncode}"
            if token:
                reason = reason.replace(token, "***")
            return FetchResult(student, repo, False, message=f"git clone failed: {reason}")
        commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        shutil.rmtree(clone / ".git", ignore_errors=True)
        target = dest / student
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(clone), target)
    return FetchResult(student, repo, True, commit=commit)


def fetch_all(org: str, prefix: str, dest: str | os.PathLike[str], *,
              roster: list[str] | None = None, token: str | None = None,
              url_template: str = DEFAULT_URL_TEMPLATE, api: str = DEFAULT_API
              ) -> list[FetchResult]:
    """Fetch every student's repository into ``dest``; one failure never stops the others.

    Students come from ``roster`` (their logins; the repository is
    ``PREFIX<login>``) or, without a roster, from the API listing of
    ``org``'s repositories starting with ``prefix``. Writes
    ``dest/fetched.json`` (student, repository, commit or error) atomically.
    """
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    if roster is not None:
        pairs = [(login, f"{prefix}{login}") for login in roster]
    else:
        pairs = [(name[len(prefix):] or name, name)
                 for name in list_repositories(org, prefix, token, api)]
    results = [fetch_one(org, repo, student, out, token=token, url_template=url_template)
               for student, repo in pairs]
    data = json.dumps([asdict(r) for r in results], indent=2)
    tmp = out / ".fetched.json.tmp"
    tmp.write_text(data + "\n", encoding="utf-8")
    os.replace(tmp, out / "fetched.json")
    return results
