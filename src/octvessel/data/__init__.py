"""Images, labels, field-of-view masks and dataset layouts.

- :func:`read_image` / :func:`read_mask` / :func:`write_image` / :func:`write_mask`:
  file I/O with fixed layouts (float32 H x W x C in [0, 1]; bool H x W), atomic writes.
- :func:`derive_fov`: FOV mask of a fundus photograph (all True for OCT en-face images).
- :func:`load_dataset` / :func:`index_dataset` / :func:`detect_format`: DRIVE, CHASE_DB1,
  STARE, HRF, CAVRI-C and a generic layout, returning :class:`Sample` objects.
"""

from octvessel.data.datasets import detect_format, index_dataset, load_dataset
from octvessel.data.fov import derive_fov
from octvessel.data.io import read_image, read_mask, write_image, write_mask
from octvessel.data.layouts import FORMATS, SampleRef
from octvessel.data.sample import Sample

__all__ = [
    "FORMATS",
    "Sample",
    "SampleRef",
    "derive_fov",
    "detect_format",
    "index_dataset",
    "load_dataset",
    "read_image",
    "read_mask",
    "write_image",
    "write_mask",
]
