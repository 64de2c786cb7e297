"""Imported once by ``grade-all``'s fork server, so that no grading process pays for it.

Every submission is graded in a process forked from that server (see
:mod:`autograder.batch`). Importing this module there imports the grader
(pytest, numpy, the plugin, the sandbox) and runs the sandbox's confinement
probe for the default sandbox user (it starts one confined worker, a few
tenths of a second) and loads the data sets the assignment declares
(``$CVCOURSE_WARM_DATASETS``, set by ``grade-all``) from the default data directory; the
forked grading processes inherit all of it. The probe's
answer is the same for every submission on a machine; other sandbox users are
still probed by each grading process as usual.
"""

from __future__ import annotations

import sys

from autograder import (
    data,
    runner,  # noqa: F401  (imported for the forked processes)
)
from autograder.sandbox import isolation_available

try:
    isolation_available(sys.executable, None)
except Exception:  # noqa: BLE001 - never break the fork server; each grading probes again
    pass
data.preload()  # the assignment's declared data sets, shared copy-on-write
