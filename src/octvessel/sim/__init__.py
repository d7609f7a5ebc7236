"""Synthetic data: procedural vessel trees and images made from them (no real data needed),
and OCT-en-face-like samples simulated from labelled fundus photographs (:mod:`.octify`)."""

from octvessel.sim.octify import OctifyConfig, octify_sample
from octvessel.sim.octify_dataset import octify_dataset
from octvessel.sim.vessels import VesselTreeConfig, render_image, vessel_tree

__all__ = [
    "OctifyConfig",
    "VesselTreeConfig",
    "octify_dataset",
    "octify_sample",
    "render_image",
    "vessel_tree",
]
