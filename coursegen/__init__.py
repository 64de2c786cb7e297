"""Generation: everything that turns the instructor's master copy into something else.

- :mod:`coursegen.modules`: the module stripper (solution markers in ``.py``/``.pyx``).
- :mod:`coursegen.nbgrader_hooks`: wires the stripper into ``nbgrader generate_assignment``.
- :mod:`coursegen.release`: ``make release``: that command into a staging folder, swapped in on success.
- :mod:`coursegen.manifest`: the students' ``submission.toml``, generated from the declaration.
- :mod:`coursegen.solutions`: executed instructor notebooks for posting after the deadline.
- :mod:`coursegen.mutants`: wrong-solution fixtures built from the reference.
"""
