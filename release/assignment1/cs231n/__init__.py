"""Course library for Assignment 1 (k-NN, linear classifiers, a two-layer net).

Notebooks import it as ``cs231n`` from the assignment folder; the grader loads the
same code under a private package name, which is why every import inside this
package is relative.
"""
