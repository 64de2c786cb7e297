"""Course library for Assignment 2 (deep fully connected nets, normalization,
dropout, convolutional nets and PyTorch).

Notebooks import it as ``cs231n`` from the assignment folder; the grader loads the
same code under a private package name, which is why every import inside this
package is relative.
"""
