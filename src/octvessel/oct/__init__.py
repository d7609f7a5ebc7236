"""OCT volumes -> en-face (fundus) reconstructions, and synthetic OCT phantoms.

- :func:`read_volume` / :class:`Volume` / :func:`write_volume`: volumes in (B-scans, depth,
  A-scans) order with spacing in mm, laterality and layer boundaries (:mod:`.volume`,
  readers in :mod:`.readers`, vendor formats in :mod:`.vendors`).
- :func:`detect_boundaries`: ILM, RPE and BM per A-scan (:mod:`.layers`).
- :func:`reconstruct` / :class:`EnFace`: full, retina, shadow and custom slab projections,
  presets P1, P2, P3 (:mod:`.enface`); :func:`write_reconstructions` writes them to files.
- :mod:`octvessel.oct.phantom`: ``make_volume(seed=...)``, ``write_dataset(...)``.

Modules, one concern each:

- reading: :mod:`.readers` (picks a format) -> :mod:`.array_files` (npy, npz, tiff),
  :mod:`.bscan_folder` (+ :mod:`.heyex_xml`), :mod:`.avanti`, :mod:`.vendors`;
  :mod:`.read_common` (voxel limit, assumed spacing); :mod:`.volume` (the container).
- layers: :mod:`.layers` -> :mod:`.surfaces` (graph search: :mod:`.graph_search`,
  :mod:`.envelope`, :mod:`.regions`); :mod:`.peak_layers` (the earlier detector).
- en-face: :mod:`.enface` -> :mod:`.slabs`, :mod:`.projection`, :mod:`.postprocess`,
  :mod:`.contrast`; :mod:`.shadows` (a weak vessel map from shadows).
- outputs: :mod:`.files`, :mod:`.batch`, :mod:`.quality`, :mod:`.qc`.
- phantom: :mod:`.phantom` -> :mod:`.phantom_config`, :mod:`.phantom_geometry`,
  :mod:`.phantom_render`.
"""

from octvessel.oct.enface import (
    PRESETS,
    REDUCERS,
    VARIANTS,
    EnFace,
    EnFaceConfig,
    Slab,
    reconstruct,
    reconstruct_all,
    resolve_boundaries,
    to_native_grid,
)
from octvessel.oct.files import write_reconstructions
from octvessel.oct.layers import DetectConfig, detect_boundaries
from octvessel.oct.readers import FORMATS, find_volumes, read_volume
from octvessel.oct.volume import Volume, write_volume

__all__ = [
    "FORMATS",
    "PRESETS",
    "REDUCERS",
    "VARIANTS",
    "DetectConfig",
    "EnFace",
    "EnFaceConfig",
    "Slab",
    "Volume",
    "detect_boundaries",
    "find_volumes",
    "read_volume",
    "reconstruct",
    "reconstruct_all",
    "resolve_boundaries",
    "to_native_grid",
    "write_reconstructions",
    "write_volume",
]
