"""Synthetic data: procedural vessel trees and images made from them (no real data needed)."""

from octvessel.sim.vessels import VesselTreeConfig, render_image, vessel_tree

__all__ = ["VesselTreeConfig", "render_image", "vessel_tree"]
