"""Hypothesis strategies shared by the project's property tests.

Small geometries for the layers of the course library (every one valid: the
window fits the padded input) and seeds for numpy's generator, so that a
failing example is replayed from the seed hypothesis reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

#: numpy Generator seeds (the drawn value is in hypothesis's failure report).
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@dataclass(frozen=True)
class _Images:
    """A batch x of shape (N, C, H, W)."""

    N: int
    C: int
    H: int
    W: int

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)


@dataclass(frozen=True)
class ConvGeometry(_Images):
    """x (N, C, H, W), w (F, C, HH, WW), stride, pad."""

    F: int
    HH: int
    WW: int
    stride: int
    pad: int

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.F, self.C, self.HH, self.WW)

    @property
    def conv_param(self) -> dict[str, int]:
        return {"stride": self.stride, "pad": self.pad}


@dataclass(frozen=True)
class PoolGeometry(_Images):
    """x (N, C, H, W) and a pool_height x pool_width pool moved by stride."""

    ph: int
    pw: int
    stride: int

    @property
    def pool_param(self) -> dict[str, int]:
        return {"pool_height": self.ph, "pool_width": self.pw, "stride": self.stride}


@st.composite
def conv_geometries(draw, max_side: int = 9, max_field: int = 5) -> ConvGeometry:
    """Any stride and padding, non-square filters, outputs that do not tile."""
    HH = draw(st.integers(1, max_field))
    WW = draw(st.integers(1, max_field))
    pad = draw(st.integers(0, 2))
    H = draw(st.integers(max(1, HH - 2 * pad), max_side))
    W = draw(st.integers(max(1, WW - 2 * pad), max_side))
    return ConvGeometry(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 3)), H=H, W=W,
                        F=draw(st.integers(1, 3)), HH=HH, WW=WW,
                        stride=draw(st.integers(1, 3)), pad=pad)


@st.composite
def pool_geometries(draw, max_side: int = 9) -> PoolGeometry:
    """Pools that overlap (stride < size), leave gaps or do not tile the input."""
    ph = draw(st.integers(1, 4))
    pw = draw(st.integers(1, 4))
    return PoolGeometry(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 3)),
                        H=draw(st.integers(ph, max_side)), W=draw(st.integers(pw, max_side)),
                        ph=ph, pw=pw, stride=draw(st.integers(1, 3)))


@st.composite
def classification_problems(draw, max_n: int = 12, max_d: int = 8, max_classes: int = 5):
    """(N, D, number of classes, regularization strength) of a linear classifier."""
    return (draw(st.integers(1, max_n)), draw(st.integers(1, max_d)),
            draw(st.integers(2, max_classes)),
            draw(st.sampled_from([0.0, 1e-3, 0.5])))
