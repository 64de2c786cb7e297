"""Generation: everything that turns the instructor's master copy into something else.

- :mod:`coursegen.modules`: the module stripper (solution markers in ``.py``/``.pyx``).
- :mod:`coursegen.nbgrader_hooks`: wires the stripper into ``nbgrader generate_assignment``.
- :mod:`coursegen.solutions`: executed instructor notebooks for posting after the deadline.
- :mod:`coursegen.mutants`: wrong-solution fixtures built from the reference.
"""
