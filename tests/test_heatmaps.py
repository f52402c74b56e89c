"""ROI heatmaps: agreement with a per-pixel reference, scaling, degenerate input, errors, records, the CLI verb."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from focusclip import heatmaps as hm
from focusclip.skeleton import MPII_PART_GROUPS

PAPER_GROUPS = {k.replace("_", " "): list(v) for k, v in MPII_PART_GROUPS.items()}  # checked in test_skeleton


# ------------------------------------------------------------ independent per-pixel reference
def _is_visible(x: float, y: float, flag: float) -> bool:
    return flag > 0 and math.isfinite(x) and math.isfinite(y) and not (x == -1 and y == -1)


def ref_map(
    point_sets: list[list[tuple[float, float]]], h: int, w: int, min_sigma: float = 1.0
) -> np.ndarray:
    """Sum over sets of one Gaussian each, every pixel centre (x = col, y = row) evaluated in Python."""
    out = [[0.0] * w for _ in range(h)]
    for pts in point_sets:
        if len(pts) < 2:
            continue
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        sx = max((max(xs) - min(xs)) / 2, min_sigma)
        sy = max((max(ys) - min(ys)) / 2, min_sigma)
        for row in range(h):
            for col in range(w):
                out[row][col] += math.exp(
                    -((col - cx) ** 2 / (2 * sx * sx) + (row - cy) ** 2 / (2 * sy * sy))
                )
    return np.clip(np.array(out), 0.0, 1.0)


def ref_sets(joints: np.ndarray, visible: np.ndarray, groups=None) -> list[list[tuple[float, float]]]:
    sets = []
    for person, flags in zip(joints, visible):
        members = [list(range(len(person)))] if groups is None else [list(g) for g in groups]
        for ids in members:
            sets.append(
                [
                    (float(person[i][0]), float(person[i][1]))
                    for i in ids
                    if _is_visible(person[i][0], person[i][1], flags[i])
                ]
            )
    return sets


def random_people(rng: np.random.Generator, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Compact random people (a person spans about a quarter of the frame; some joints fall outside)."""
    centres = rng.uniform(0.0, 1.0, size=(n, 1, 2))
    joints = (centres + rng.uniform(-0.15, 0.15, size=(n, 16, 2))) * (w, h)
    visible = (rng.random((n, 16)) > 0.3).astype(float)
    return joints, visible


# ----------------------------------------------------------------------- agreement with reference
@pytest.mark.parametrize(
    "seed,people,size", [(0, 1, (17, 23)), (1, 2, (9, 40)), (2, 3, (30, 12)), (3, 2, (24, 24))]
)
@pytest.mark.parametrize("mode", ["person", "parts"])
def test_keypoints_match_reference(seed, people, size, mode):
    rng = np.random.default_rng(seed)
    joints, visible = random_people(rng, people, *size)
    got = hm.keypoints_heatmap(joints, visible, size, mode)
    groups = None if mode == "person" else list(PAPER_GROUPS.values())
    want = ref_map(ref_sets(joints, visible, groups), *size)
    assert got.shape == size and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5
    assert got.max() > 0.1  # the configuration actually produced something


def test_single_person_shape_of_gaussian():
    joints = np.full((16, 2), -1.0)
    joints[0], joints[9] = (10, 20), (30, 60)  # box x 10..30, y 20..60 -> centre (20, 40), sigma (10, 20)
    h = hm.keypoints_heatmap(joints, None, (80, 50))
    assert h[40, 20] == pytest.approx(1.0)
    assert h[40, 30] == pytest.approx(math.exp(-0.5), abs=1e-6)
    assert h[60, 20] == pytest.approx(math.exp(-0.5), abs=1e-6)
    assert np.unravel_index(h.argmax(), h.shape) == (40, 20)


def test_single_person_without_batch_dim_equals_batched():
    rng = np.random.default_rng(5)
    joints, visible = random_people(rng, 1, 20, 20)
    a = hm.keypoints_heatmap(joints[0], visible[0], (20, 20), "parts")
    b = hm.keypoints_heatmap(joints, visible, (20, 20), "parts")
    np.testing.assert_array_equal(a, b)


def test_minus_one_marks_invisible_when_visibility_missing():
    rng = np.random.default_rng(7)
    joints, visible = random_people(rng, 2, 20, 30)
    marked = np.where(visible[..., None] > 0, joints, -1.0)
    for mode in ("person", "parts"):
        np.testing.assert_allclose(
            hm.keypoints_heatmap(marked, None, (20, 30), mode),
            hm.keypoints_heatmap(joints, visible, (20, 30), mode),
            atol=1e-7,
        )


@pytest.mark.parametrize("mode", ["person", "parts"])
def test_src_size_equals_scaled_coordinates(mode):
    rng = np.random.default_rng(11)
    src, out = (720, 1280), (56, 64)
    joints, visible = random_people(rng, 2, *src)
    got = hm.keypoints_heatmap(joints, visible, out, mode, src_size=src)
    scaled = joints * (out[1] / src[1], out[0] / src[0])
    want = hm.keypoints_heatmap(scaled, visible, out, mode)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(
        got,
        ref_map(ref_sets(scaled, visible, None if mode == "person" else list(PAPER_GROUPS.values())), *out),
        atol=1e-5,
    )


def test_boxes_match_reference_and_scale():
    boxes = np.array(
        [[2.0, 3.0, 12.0, 9.0], [15.0, 1.0, 15.0, 14.0], [20.0, 18.0, 5.0, 6.0]]
    )  # zero width; swapped
    sets = [[(b[0], b[1]), (b[2], b[3])] for b in boxes]
    np.testing.assert_allclose(hm.boxes_heatmap(boxes, (20, 25)), ref_map(sets, 20, 25), atol=1e-5)
    np.testing.assert_allclose(
        hm.boxes_heatmap(boxes * 2, (20, 25), src_size=(40, 50)), hm.boxes_heatmap(boxes, (20, 25)), atol=1e-6
    )


# --------------------------------------------------------------------------------- degenerate input
def test_degenerate_inputs_are_finite_and_in_range():
    size = (15, 20)
    one = np.full((16, 2), -1.0)
    one[3] = (5, 5)
    assert not hm.keypoints_heatmap(one, None, size).any()  # a single visible joint adds nothing
    assert not hm.keypoints_heatmap(one, None, size, "parts").any()
    assert not hm.keypoints_heatmap(np.zeros((0, 16, 2)), np.zeros((0, 16)), size).any()  # no people
    assert not hm.keypoints_heatmap([], None, size).any()
    assert not hm.boxes_heatmap([], size).any()

    vertical = one.copy()
    vertical[4] = (5, 12)  # zero box width: sigma_x falls back to min_sigma
    v = hm.keypoints_heatmap(vertical, None, size)
    assert np.isfinite(v).all() and v.max() == pytest.approx(math.exp(-0.5 * (0.5 / 3.5) ** 2), abs=1e-6)
    assert v[8, 6] == pytest.approx(math.exp(-0.5 / 1.0) * math.exp(-0.5 * (0.5 / 3.5) ** 2), abs=1e-6)
    wider = hm.keypoints_heatmap(vertical, None, size, min_sigma=3.0)
    assert wider[8, 8] > v[8, 8]

    outside = np.random.default_rng(0).uniform(-500, 500, (2, 16, 2))
    o = hm.keypoints_heatmap(outside, None, size, "parts")
    assert np.isfinite(o).all() and o.min() >= 0 and o.max() <= 1

    for h in (
        hm.boxes_heatmap([[3, 3, 3, 3], [1, 2, 9, 2]], size),
        hm.boxes_heatmap([[np.nan, 0, 4, 4]], size),
    ):
        assert np.isfinite(h).all() and h.min() >= 0 and h.max() <= 1
    assert not hm.boxes_heatmap([[np.nan, 0, 4, 4], [-1, -1, -1, -1]], size).any()


def test_nan_coordinates_are_invisible():
    rng = np.random.default_rng(3)
    joints, visible = random_people(rng, 2, 20, 20)
    visible[:] = 1
    with_nan = joints.copy()
    with_nan[0, 5] = (np.nan, 3.0)
    with_nan[1, 9, 1] = np.inf
    cleaned_vis = visible.copy()
    cleaned_vis[0, 5] = cleaned_vis[1, 9] = 0
    for mode in ("person", "parts"):
        got = hm.keypoints_heatmap(with_nan, visible, (20, 20), mode)
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got, hm.keypoints_heatmap(joints, cleaned_vis, (20, 20), mode))


# ------------------------------------------------------------------------------------- errors
def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(16, 2\).*got \(15, 2\)"):
        hm.keypoints_heatmap(np.zeros((15, 2)), None, (10, 10))
    with pytest.raises(ValueError, match=r"got \(2, 16, 3\)"):
        hm.keypoints_heatmap(np.zeros((2, 16, 3)), None, (10, 10))
    with pytest.raises(ValueError, match=r"visibility.*got \(3, 16\)"):
        hm.keypoints_heatmap(np.zeros((2, 16, 2)), np.ones((3, 16)), (10, 10))
    with pytest.raises(ValueError, match=r"boxes.*\(B, 4\).*got \(2, 3\)"):
        hm.boxes_heatmap(np.zeros((2, 3)), (10, 10))
    with pytest.raises(ValueError, match="size"):
        hm.keypoints_heatmap(np.zeros((16, 2)), None, (0, 10))
    with pytest.raises(ValueError, match="mode"):
        hm.keypoints_heatmap(np.zeros((16, 2)), None, (10, 10), mode="boxes")
    with pytest.raises(ValueError, match="out of range"):
        hm.points_heatmap(np.zeros((4, 2)), None, (10, 10), groups=[[0, 7]])


# ------------------------------------------------------------------------------ points (CUB)
def test_cub_points_one_gaussian_and_groups():
    rng = np.random.default_rng(4)
    parts = rng.uniform(0, 30, (15, 2))
    vis = (rng.random(15) > 0.3).astype(float)
    vis[:2] = 1
    got = hm.points_heatmap(parts, vis, (25, 30))
    want = ref_map(ref_sets(parts[None], vis[None]), 25, 30)
    assert np.abs(got - want).max() < 1e-5

    groups = {"head": [1, 4, 5, 6, 10, 14], "body": [0, 2, 3, 9], "wings": [8, 12, 13]}
    got = hm.points_heatmap(parts, vis, (25, 30), groups=groups)
    want = ref_map(ref_sets(parts[None], vis[None], list(groups.values())), 25, 30)
    assert np.abs(got - want).max() < 1e-5


# ------------------------------------------------------------------------------------ records
def _record(**extra):
    joints = [[-1, -1]] * 16
    joints = [list(j) for j in joints]
    joints[7], joints[9], joints[0] = [100, 50], [110, 20], [90, 300]
    vis = [0] * 16
    vis[7] = vis[9] = vis[0] = 1
    rec = {
        "image": "a.jpg",
        "id": "rec-1",
        "width": 200,
        "height": 400,
        "people": [{"joints": joints, "visible": vis}],
    }
    rec.update(extra)
    return rec


def test_record_heatmap_modes():
    rec = _record(boxes=[[10, 10, 60, 90]], points=[[5, 5], [50, 80]], points_visible=[1, 1])
    j = np.array(rec["people"][0]["joints"], float)
    v = np.array(rec["people"][0]["visible"], float)
    for mode in ("person", "parts"):
        np.testing.assert_array_equal(
            hm.record_heatmap(rec, (40, 20), mode),
            hm.keypoints_heatmap(j, v, (40, 20), mode, src_size=(400, 200)),
        )
    np.testing.assert_array_equal(
        hm.record_heatmap(rec, (40, 20), "auto"), hm.record_heatmap(rec, (40, 20), "person")
    )
    np.testing.assert_array_equal(
        hm.record_heatmap(rec, (40, 20), "boxes"),
        hm.boxes_heatmap([[10, 10, 60, 90]], (40, 20), src_size=(400, 200)),
    )
    no_people = {k: v for k, v in rec.items() if k != "people"}
    np.testing.assert_array_equal(
        hm.record_heatmap(no_people, (40, 20), "auto"), hm.record_heatmap(no_people, (40, 20), "points")
    )
    boxes_only = {"image": "b.jpg", "width": 200, "height": 400, "boxes": [[10, 10, 60, 90]]}
    np.testing.assert_array_equal(
        hm.record_heatmap(boxes_only, (40, 20), "auto"), hm.record_heatmap(rec, (40, 20), "boxes")
    )
    with pytest.raises(ValueError, match="rec-1.*width"):
        hm.record_heatmap({k: v for k, v in rec.items() if k != "width"}, (40, 20))
    np.testing.assert_array_equal(
        hm.record_heatmap(_record(width=None), (40, 20), "person", src_size=(400, 200)),
        hm.record_heatmap(rec, (40, 20), "person"),
    )


# ---------------------------------------------------------------------------------------- CLI
def _scene(tmp_path):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    path = tmp_path / "img.png"
    img.save(path)
    return path, img


@pytest.mark.parametrize("kind", ["record", "array", "boxes"])
def test_cli_heatmap_end_to_end(tmp_path, kind, caplog):
    from focusclip.cli import main

    img_path, img = _scene(tmp_path)
    src = tmp_path / "input.json"
    if kind == "boxes":
        src.write_text(json.dumps([[10, 10, 40, 50]]))
        flag = "--boxes"
    else:
        joints = np.full((16, 2), -1.0)
        joints[[0, 5, 9, 7, 12, 13]] = [[30, 55], [50, 55], [40, 5], [40, 15], [30, 15], [50, 15]]
        obj = {
            "image": "img.png",
            "people": [{"joints": joints.tolist(), "visible": (joints[:, 0] >= 0).astype(int).tolist()}],
        }
        src.write_text(json.dumps(obj if kind == "record" else joints.tolist()))
        flag = "--keypoints"
    out, heat = tmp_path / "o" / "overlay.png", tmp_path / "heat.png"
    with caplog.at_level("INFO"):
        rc = main(
            [
                "heatmap",
                str(img_path),
                flag,
                str(src),
                "--mode",
                "parts" if kind == "array" else "person",
                "--size",
                "30",
                "40",
                "--out",
                str(out),
                "--save-heatmap",
                str(heat),
            ]
        )
    assert rc == 0
    assert str(out) in caplog.text
    o = Image.open(out)
    assert o.size == img.size and o.mode == "RGB"
    assert (np.asarray(o) != np.asarray(img)).any()
    hmap = Image.open(heat)
    assert hmap.size == (40, 30) and hmap.mode == "L"
    assert np.asarray(hmap).max() >= 240 and np.asarray(hmap).min() < 50


def test_cli_heatmap_bad_input(tmp_path, capsys):
    from focusclip.cli import main

    img_path, _ = _scene(tmp_path)
    bad = tmp_path / "kp.json"
    bad.write_text(json.dumps({"no_people": True}))
    assert main(["heatmap", str(img_path), "--keypoints", str(bad), "--out", str(tmp_path / "x.png")]) == 1
    assert "kp.json" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_auto_mode_errors_name_the_record():
    from focusclip.heatmaps import record_heatmap

    with pytest.raises(ValueError, match="record r9"):
        record_heatmap({"id": "r9", "width": 8, "height": 8, "points": [[1, 2, 3]]}, (8, 8))


# ------------------------------------------------------------ no float32 subnormals (issue 23)
F32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32, 2**-126


def _far_tail_people() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Two small people near the left/top edges of a 1280x720 frame: their Gaussians' far tails pass
    through float32's subnormal range (exp(-87)..exp(-103)) inside the frame."""
    joints = np.zeros((2, 16, 2))
    joints[0] = np.linspace((10.0, 20.0), (60.0, 120.0), 16)  # sigma 25 x 50
    joints[1] = np.linspace((300.0, 30.0), (340.0, 90.0), 16)  # sigma 20 x 30
    return joints, np.ones((2, 16)), (720, 1280)


def _exact_map(joints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float64 sum of the people's Gaussians at every pixel (no cutoff, no cast), clipped to [0, 1]."""
    h, w = size
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    out = np.zeros(size)
    for person in joints:
        (x1, y1), (x2, y2) = person.min(axis=0), person.max(axis=0)
        sx, sy = max((x2 - x1) / 2, 1.0), max((y2 - y1) / 2, 1.0)
        out += np.exp(-((xs - (x1 + x2) / 2) ** 2 / (2 * sx * sx) + (ys - (y1 + y2) / 2) ** 2 / (2 * sy * sy)))
    return np.clip(out, 0.0, 1.0)


def _subnormals(a: np.ndarray) -> int:
    return int(((a != 0) & (np.abs(a) < F32_TINY)).sum())


def test_factor_cutoff_is_pinned():
    assert hm.FACTOR_CUTOFF == 2.0**-63
    assert hm.FACTOR_CUTOFF**2 == F32_TINY  # so a product of two kept factor values is a normal float32


def test_gaussian_factors_have_no_subnormals():
    centre, sigma, n = np.array([10.0, 35.0]), np.array([25.0, 20.0]), 1280
    raw = np.exp(-((np.arange(n) - centre[:, None]) ** 2) / (2 * sigma[:, None] ** 2)).astype(np.float32)
    assert _subnormals(raw) > 0  # the case of issue 23: a plain cast leaves subnormals in the tails
    got = hm.gaussian_factor(centre, sigma, n)
    assert got.dtype == np.float32 and got.shape == (2, n)
    assert _subnormals(got) == 0
    kept = got[got > 0]
    assert kept.min() >= hm.FACTOR_CUTOFF  # every product of two kept values is >= 2**-126: normal
    # the cutoff boundary: values at or above 2**-63 stay, values below become exactly 0
    exact = np.exp(-((np.arange(n) - centre[:, None]) ** 2) / (2 * sigma[:, None] ** 2))
    np.testing.assert_array_equal(got == 0, exact < hm.FACTOR_CUTOFF)
    np.testing.assert_array_equal(got[exact >= hm.FACTOR_CUTOFF], exact[exact >= hm.FACTOR_CUTOFF].astype(np.float32))


@pytest.mark.parametrize("mode", ["person", "parts"])
def test_far_tails_give_no_subnormal_maps_and_stay_exact(mode):
    joints, visible, size = _far_tail_people()
    got = hm.keypoints_heatmap(joints, visible, size, mode)
    assert _subnormals(got) == 0
    if mode == "person":
        # documented tolerance: the cutoff moves a value by at most N * 2**-63; float32 rounding dominates
        assert np.abs(got.astype(np.float64) - _exact_map(joints, size)).max() < 1e-6
        assert got.max() > 0.99
