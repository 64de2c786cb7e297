"""Build the course library's Cython extension (setuptools + Cython 3, no distutils).

From this folder: ``python setup.py build_ext --inplace`` (or ``python build_ext.py``),
which writes ``cs231n/im2col_cython.*.so`` next to its source.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

EXTENSIONS = [
    Extension("cs231n.im2col_cython", ["cs231n/im2col_cython.pyx"],
              extra_compile_args=["-O3"]),
]

setup(
    name="cs231n-extensions",
    ext_modules=cythonize(EXTENSIONS, language_level=3, quiet=True),
    zip_safe=False,
)
