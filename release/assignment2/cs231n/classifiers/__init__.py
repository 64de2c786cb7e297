"""Classifiers of Assignment 2."""

from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet

__all__ = ["FullyConnectedNet", "ThreeLayerConvNet"]
