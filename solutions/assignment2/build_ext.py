"""Compile ``cs231n/im2col_cython.pyx`` in place: ``python build_ext.py``.

Needs Cython 3 (``pip install cython``) and a C compiler. Run it again after
every change to the ``.pyx`` file, then restart the notebook's kernel.
"""

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    try:
        import Cython  # noqa: F401
    except ImportError:
        print("Cython is not installed: pip install 'cython>=3'", file=sys.stderr)
        return 1
    cmd = [sys.executable, "setup.py", "build_ext", "--inplace"]
    done = subprocess.run(cmd, cwd=here, check=False)
    if done.returncode == 0:
        print("built cs231n/im2col_cython")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
