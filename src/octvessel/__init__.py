"""octvessel: retinal vessel segmentation for OCT fundus reconstructions and fundus photographs.

The pipeline is OCT volume -> layer boundaries -> en-face reconstruction -> IterNet (or one of
the paper's other networks) -> vessel probability and mask -> metrics and reports. The
command line (``octvessel``) is a thin layer over the sub-packages:

- :mod:`octvessel.models` -- model registry, IterNet, ``save_pretrained``/``from_pretrained``;
- :mod:`octvessel.data` -- image I/O, dataset layouts, FOV masks;
- :mod:`octvessel.errors` -- the exceptions that map to exit codes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
