"""octvessel.morphometry: hand-made masks with known answers, and the phantom's truth."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from octvessel.errors import InputError, UsageError
from octvessel.morphometry import measure, phantom_truth
from octvessel.morphometry.features import box_counting_dimension
from octvessel.morphometry.graph import build_graph, fill_pinholes
from octvessel.morphometry.phantom_check import branch_point_counts
from octvessel.sim.branch_score import match_branch_points
from octvessel.sim.morphometry_truth import isotropic_mask

AVANTI = (7.0 / 141, 7.0 / 385)


def _ring(spacing, radius_mm=2.0, width_mm=0.08, size_mm=7.0):
    h, w = int(size_mm / spacing[0]), int(size_mm / spacing[1])
    y, x = np.meshgrid((np.arange(h) + 0.5) * spacing[0], (np.arange(w) + 0.5) * spacing[1],
                       indexing="ij")  # fmt: skip
    return np.abs(np.hypot(y - size_mm / 2, x - size_mm / 2) - radius_mm) < width_mm / 2


@pytest.mark.parametrize("spacing", [(0.0182, 0.0182), AVANTI, (0.0182, 0.05)])
def test_circle_length_and_width_on_any_grid(spacing):
    m = measure(_ring(spacing), spacing)
    row = m.rows[0]
    assert row["length_mm"] == pytest.approx(2 * np.pi * 2.0, rel=0.02)
    assert row["mean_width_um"] == pytest.approx(80.0, abs=0.6 * max(spacing) * 1000)
    assert row["tortuosity"] != row["tortuosity"] or row["tortuosity"] >= 1.0
    assert row["branch_points"] == 0 and row["end_points"] == 0


def test_straight_line_counts_and_tortuosity():
    mask = np.zeros((40, 100), bool)
    mask[18:23, 10:90] = True  # 5 px wide, 80 px long
    row = measure(mask, (0.01, 0.01)).rows[0]
    assert row["end_points"] == 2 and row["branch_points"] == 0 and row["segments"] == 1
    assert row["tortuosity"] == pytest.approx(1.0, abs=0.01)
    assert row["mean_width_um"] == pytest.approx(50.0, abs=5.0)
    assert row["area_density"] == pytest.approx(400 / 4000)
    assert row["area_mm2"] == pytest.approx(0.4)


def test_t_junction_is_one_branch_point_and_spurs_are_pruned():
    mask = np.zeros((80, 120), bool)
    mask[20:29, 10:110] = True  # wide horizontal vessel (9 px): its skeleton may grow spurs
    mask[29:70, 57:62] = True  # branch going down
    g = build_graph(mask, (0.01, 0.01))
    assert len(g.branch_points) == 1
    r, c = g.branch_points[0]
    assert abs(r - 24) <= 3 and abs(c - 59) <= 3
    assert len(g.end_points) == 3


def _y_split(half_angle_deg, radius=3.5, split=(100.0, 80.0), shape=(200, 260), lengths=(70, 140)):
    """A Y of three straight capsules (radius px) meeting at ``split`` on a ``shape`` grid:
    the parent to the left, ``lengths`` (parent, children) px long."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)

    def arm(angle, length):
        d = np.array([np.sin(angle), np.cos(angle)])
        t = np.clip((yy - split[0]) * d[0] + (xx - split[1]) * d[1], 0, length)
        return np.hypot(yy - split[0] - t * d[0], xx - split[1] - t * d[1]) <= radius

    a = np.radians(half_angle_deg)
    return arm(np.pi, lengths[0]) | arm(a, lengths[1]) | arm(-a, lengths[1])


@pytest.mark.parametrize("half_angle", [20, 30, 45])
def test_y_split_branch_point_is_where_the_arms_meet(half_angle):
    g = build_graph(_y_split(half_angle), (0.01, 0.01))
    assert len(g.branch_points) == 1
    r, c = g.branch_points[0]
    assert abs(r - 100) <= 1 and abs(c - 80) <= 2.5  # the skeleton's fork is 2-7 px right


def test_branch_points_come_back_in_input_pixels_on_a_non_square_grid():
    # the Y of 10 um pixels, sampled every 3rd row: 30 x 10 um pixels (rows 3x coarser)
    fine = _y_split(30, radius=6.0)
    mask = fine[1::3]
    m = measure(mask, (0.03, 0.01))
    assert m.graph_spacing == (0.01, 0.01) and m.shape == mask.shape
    assert m.width_mm.shape[0] > 2 * mask.shape[0]  # the graph grid is the square one
    assert len(m.branch_points) == 1
    r, c = m.branch_points[0]
    assert abs(r - (100 - 1) / 3) <= 1 and abs(c - 80) <= 3  # input rows, not graph rows
    # true 120 um (116 on the full grid); the bool mask interpolated instead reads 103
    assert m.rows[0]["mean_width_um"] == pytest.approx(120.0, abs=10.0)


def test_a_junction_of_very_thick_arms_is_placed_without_the_fit_and_in_little_memory():
    # radius 22 px arms: the fit's window would hold ~40 000 pixels x ~2 000 candidates
    # (2.6 GB traced); it is skipped and the arms' line intersection is kept
    mask = _y_split(30, radius=22.0, split=(200.0, 160.0), shape=(400, 520), lengths=(140, 300))
    tracemalloc.start()
    try:
        g = build_graph(mask, (0.01, 0.01))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * 2**20
    assert len(g.branch_points) == 1
    r, c = g.branch_points[0]
    assert abs(r - 200) <= 2 and abs(c - 160) <= 2


def test_pinholes_between_touching_walls_make_no_loop():
    mask = np.zeros((60, 120), bool)
    mask[20:26, 5:115] = True  # two parallel 6 px vessels whose walls touch ...
    mask[27:33, 5:115] = True
    mask[26, 5:115] = True
    mask[26, 60] = False  # ... with a one-pixel gap between them
    filled = fill_pinholes(mask)
    assert filled[26, 60] and filled.sum() == mask.sum() + 1
    assert len(build_graph(mask, (0.01, 0.01)).branch_points) == 0
    bigger = mask.copy()
    bigger[26, 40:50] = False  # a 10-pixel enclosed gap is background, not a pinhole
    assert not fill_pinholes(bigger)[26, 45]
    edge = np.ones((5, 5), bool)
    edge[0, 2] = edge[2, 2] = False  # a one-pixel gap on the border stays; one inside is filled
    assert not fill_pinholes(edge)[0, 2] and fill_pinholes(edge)[2, 2]


def test_fractal_dimension_of_line_and_plane():
    line = np.zeros((256, 256), bool)
    line[128, :] = True
    full = np.ones((256, 256), bool)
    full[0, 0] = False
    assert box_counting_dimension(line) == pytest.approx(1.0, abs=0.02)
    assert box_counting_dimension(full) == pytest.approx(2.0, abs=0.05)


def test_etdrs_regions_cover_the_grid_and_name_nasal_by_laterality():
    sp = (0.01, 0.01)
    mask = np.zeros((700, 700), bool)
    mask[340:360, 360:690] = True  # a vessel to the right of the fovea
    od = {r["region"]: r for r in measure(mask, sp, fovea=(350, 350), laterality="OD").rows}
    os_ = {r["region"]: r for r in measure(mask, sp, fovea=(350, 350), laterality="OS").rows}
    assert od["outer_nasal"]["length_mm"] > 1.0 and od["outer_temporal"]["length_mm"] == 0
    assert os_["outer_temporal"]["length_mm"] > 1.0 and os_["outer_nasal"]["length_mm"] == 0
    assert od["centre"]["area_mm2"] == pytest.approx(np.pi * 0.25, rel=0.02)
    assert not any(r["partial"] for r in od.values())
    sectors = [r for k, r in od.items() if k != "whole"]
    assert sum(r["length_mm"] for r in sectors) <= od["whole"]["length_mm"] + 1e-9
    edge = {r["region"]: r for r in measure(mask, sp, fovea=(350, 200), laterality="OD").rows}
    assert edge["outer_temporal"]["partial"] and 0 < edge["outer_temporal"]["region_fraction"] < 1


@pytest.mark.parametrize(
    ("mask", "spacing", "kw", "err"),
    [
        (np.zeros((20, 20), bool), (0.01, 0.01), {}, InputError),
        (np.ones((20, 20), bool), (0.01, 0.01), {}, InputError),
        (np.arange(400).reshape(20, 20) % 3, (0.01, 0.01), {}, InputError),
        (np.eye(20, dtype=bool), (0.0, 0.01), {}, UsageError),
        (np.eye(20, dtype=bool), (-0.01, 0.01), {}, UsageError),
        (np.eye(20, dtype=bool), (5.0, 0.01), {}, UsageError),
        (np.eye(20, dtype=bool), (0.01, 0.01), {"fovea": (25, 3)}, UsageError),
    ],
)
def test_bad_input_is_refused(mask, spacing, kw, err):
    with pytest.raises(err):
        measure(mask, spacing, **kw)


# ------------------------------------------------------------------ the phantom's truth

#: a phantom whose every vessel is wider than a B-scan step (50 um), so the native-grid
#: mask can show it: min radius 30 um. (The default phantom's thinnest vessels, 20 um,
#: fall between B-scans and break up; see docs/measure.md.)
WELL_SAMPLED = {"min_radius_um": 30.0, "vessel_fraction": 0.08}


@pytest.fixture(scope="module")
def phantoms():
    from octvessel.oct.phantom import make_volume

    return [make_volume(seed=s, **WELL_SAMPLED) for s in range(3)]


def _iso(ph):
    """The phantom's tree on the square grid it grew on (not resampled from B-scans)."""
    return isotropic_mask(ph.centrelines)


def test_phantom_truth_length_and_width(phantoms):
    for ph in phantoms:
        sp = (ph.config.spacing[0], ph.config.spacing[2])
        truth = phantom_truth(ph.centrelines, ph.vessels.shape, ph.config.field_mm)
        row = measure(ph.vessels, sp).rows[0]
        assert row["length_mm"] == pytest.approx(truth["length_mm"], rel=0.05)
        assert row["mean_width_um"] == pytest.approx(truth["mean_diameter_um"], abs=15.0)


def test_phantom_native_and_isotropic_lengths_agree(phantoms):
    for ph in phantoms:
        sp = (ph.config.spacing[0], ph.config.spacing[2])
        iso = _iso(ph)
        native = measure(ph.vessels, sp).rows[0]["length_mm"]
        isotropic = measure(iso, (ph.config.field_mm[0] / iso.shape[0], sp[1])).rows[0]["length_mm"]
        assert native == pytest.approx(isotropic, rel=0.03)


def test_match_branch_points_scores_and_ignores_what_it_should():
    truth = np.array([[10.0, 10.0], [50.0, 50.0], [90.0, 90.0]])
    zones, reach = np.array([[90.0, 90.0]]), np.array([[5.0, 5.0]])
    meas = np.array([[11.0, 12.0], [70.0, 70.0], [91.0, 89.0]])
    assert match_branch_points(meas, truth, zones, reach) == (1, 1, 1)


#: phantom seeds of the branch-point check, pooled. A regression bound, not the issue's
#: verdict: 0-19 were all looked at while tuning octvessel.morphometry.nodes and the
#: pinhole fill (0.966 native, 0.941 isotropic). Fresh seeds pooled score lower
#: (docs/measure.md): native 0.913 (20-179), isotropic 0.909 (20-139), 0.903 (140-179).
BRANCH_SEEDS = range(20)


@pytest.fixture(scope="module")
def branch_phantoms():
    from octvessel.oct.phantom import make_volume

    # a shallower volume renders faster; the tree is drawn before depth matters
    return [make_volume(seed=s, depth=400, **WELL_SAMPLED) for s in BRANCH_SEEDS]


@pytest.mark.slow
@pytest.mark.parametrize("grid", ["native", "isotropic"])
def test_phantom_branch_points(branch_phantoms, grid):
    total = np.zeros(3, int)
    for ph in branch_phantoms:
        total += branch_point_counts(ph, grid)
    tp, fp, fn = total.tolist()
    assert tp >= 30  # enough scored points for the F1 to mean something
    assert 2 * tp / (2 * tp + fp + fn) >= 0.9
