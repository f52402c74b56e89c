"""Every person in a photo, offline: the MediaPipe detector's multi-person search on real photos of several
people (the packaged portraits pasted side by side, tests/people_photos.py), photos without people, the
search's pieces, and `data detect --workers N` whose workers end with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import people_photos as pp
from focusclip import skeleton
from focusclip.detect import create_detector
from focusclip.detect.mediapipe_pose import classic_available
from focusclip.detect.people import BODY_FROM_FACE, Search, body_region, find_people, iou, windows

#: tests of the offline detector: skipped where mediapipe is missing or has only the Tasks API (Python 3.13)
classic = pytest.mark.skipif(not classic_available(), reason="needs mediapipe's classic solutions "
                             "(pip install 'focusclip[detect]' on Python < 3.13)")


@pytest.fixture(scope="module")
def detector():
    with create_detector("mediapipe") as d:
        yield d


def _check_people(people, truth):
    score = pp.score_people(people, truth)
    assert (score["true"], score["found"], score["invented"]) == (len(truth), len(truth), 0), score
    for p in people:  # joints inside the person's own box, the box inside the photo's person
        x1, y1, x2, y2 = p.box
        vis = p.visible > 0
        assert vis.sum() >= 3 and p.face_box is not None
        assert (p.joints[vis, 0] >= x1 - 1e-6).all() and (p.joints[vis, 0] <= x2 + 1e-6).all()
        assert (p.joints[vis, 1] >= y1 - 1e-6).all() and (p.joints[vis, 1] <= y2 + 1e-6).all()
    for i, a in enumerate(people):  # no duplicates
        for b in people[i + 1:]:
            assert iou(a.box, b.box) < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 3, 4])
@classic
def test_every_person_in_two_person_composites(detector, index):
    comps = pp.composites()
    comp = comps[index % len(comps)]
    assert len(comp.boxes) == 2
    _check_people(detector.detect(comp.image).people, comp.boxes)


@pytest.mark.slow
@pytest.mark.parametrize("index", [6, 8, 11])
@classic
def test_every_person_in_three_person_composites(detector, index):
    comps = pp.composites()
    if len(comps) <= index:
        pytest.skip("scikit-image's portraits are not installed")
    comp = comps[index]
    assert len(comp.boxes) == 3
    _check_people(detector.detect(comp.image).people, comp.boxes)


@classic
def test_one_portrait_gives_exactly_one_person(detector):
    for single in pp.singles():
        det = detector.detect(single.image)
        assert len(det.people) == 1, single.names
        _check_people(det.people, single.boxes)


@pytest.mark.parametrize("kind", ["grass", "brick", "noise", "gradient"])
@classic
def test_no_person_in_a_photo_without_people(detector, kind):
    assert detector.detect(pp.texture(kind, (480, 360), seed=1)).people == []


@classic
def test_single_person_mode_finds_one(detector):
    comp = pp.composite(["hopper", "hopper"], [300, 300], [0, 40], "grey")
    with create_detector("mediapipe", multi=False) as single:
        assert single.max_people == 1 and len(single.detect(comp.image).people) == 1
        assert single.describe()["multi"] is False
    assert detector.max_people is None and detector.describe()["min_face_score"] == Search.min_face_score


@classic
def test_the_same_portrait_twice_is_two_people_not_one(detector):
    """Two identical people side by side: both found, neither merged into the other nor repeated."""
    comp = pp.composite(["hopper", "hopper"], [320, 320], [0, 0], "gradient", gap=40)
    _check_people(detector.detect(comp.image).people, comp.boxes)


# ------------------------------------------------------------------------------- the search's pieces
def test_windows_cover_the_photo_half_a_window_apart():
    boxes = windows(1000, 400, (1.0, 0.5))
    big = [b for b in boxes if b[2] - b[0] == 400]
    small = [b for b in boxes if b[2] - b[0] == 200]
    assert len(big) + len(small) == len(boxes)
    assert [b[0] for b in big] == [0, 200, 400, 600] and big[-1][2] == 1000  # flush with the right edge
    assert sorted({b[1] for b in small}) == [0, 100, 200] and max(b[2] for b in small) == 1000
    assert windows(400, 400, (1.0,)) == []  # the whole photo is searched anyway


def test_body_region_from_a_face():
    side, above, below = BODY_FROM_FACE
    assert body_region((100, 50, 140, 100)) == (120 - side * 40, 50 - above * 50, 120 + side * 40, 50 + below * 50)


def _stand(x0, y0, s=1.0):
    """17 COCO keypoints of a standing person (head at the top), scores 0.9."""
    pts = np.array([(0, 0), (4, -3), (-4, -3), (9, 0), (-9, 0), (20, 25), (-20, 25), (24, 55), (-24, 55), (26, 80),
                    (-26, 80), (12, 90), (-12, 90), (12, 130), (-12, 130), (12, 170), (-12, 170)], float)
    return pts * s + (x0, y0), np.full(17, 0.9)


def test_find_people_groups_by_head_and_needs_a_confirming_face():
    """A fake pose model that reports the person nearest the region's centre: the same person seen from
    several regions is kept once; a 'person' whose head crop shows no face (or a face away from the nose)
    is dropped."""
    rgb = np.zeros((300, 600, 3), np.uint8)
    people_at = [(100, 60), (400, 60), (520, 60)]

    def pose(crop):  # the crop's pixels are not used; its size and our bookkeeping tell where it is
        return pose.answers.pop(0) if pose.answers else []

    def faces(image):  # whole photo: no face; head crops: a face in the middle for persons 1 and 2, then off the nose
        if image.shape[:2] == rgb.shape[:2]:
            return []
        faces.calls += 1
        return [((80.0, 80.0, 112.0, 112.0), 0.9)] if faces.calls < 3 else [((0.0, 0.0, 20.0, 20.0), 0.95)]

    faces.calls = 0
    regions = [(0, 0, 600, 300)] + windows(600, 300, (1.0,))
    assert regions[1:] == [(0, 0, 300, 300), (150, 0, 450, 300), (300, 0, 600, 300)]
    # in crop pixels: the whole photo shows person 1; the first window person 1 again (2 px off, less sure);
    # the second nobody; the third persons 2 and 3
    pose.answers = [[_stand(*people_at[0])], [(_stand(*people_at[0])[0] + 2, np.full(17, 0.8))], [],
                    [(p - (300, 0), s) for p, s in (_stand(*people_at[1]), _stand(*people_at[2]))]]
    found, face_boxes = find_people(rgb, pose, faces, search=Search(windows=(1.0,), face_regions=False))
    heads = sorted(round(p.joints[9][0]) for p in found)  # MPII head top x
    assert len(found) == 2 and heads == [100, 400]  # person 1 once (the 0.9 one), person 2; person 3 refused
    assert all(p.score == pytest.approx(0.9) for p in found) and len(face_boxes) == 2


# -------------------------------------------------------------------------- workers end with the parent
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@classic
def test_detect_workers_end_when_the_parent_is_killed(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    base = pp.portrait("hopper").resize((256, 300))
    for i in range(40):
        base.rotate(i % 7).save(photos / f"p{i:02d}.jpg")
    out = tmp_path / "records.jsonl"
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "focusclip.cli", "data", "detect", str(photos), "--out", str(out),
                             "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
            assert proc.poll() is None, "the job ended before it could be killed"
            time.sleep(0.2)
        children = _children(proc.pid)
        assert len(children) >= 2, children  # the two workers (and multiprocessing's resource tracker)
        assert out.read_text().count("\n") < 40  # killed mid-job
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(c) for c in children):
            time.sleep(0.1)
        assert [c for c in children if _alive(c)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for c in _children(proc.pid):
            os.kill(c, signal.SIGKILL)


def test_end_with_parent_is_a_no_op_in_the_main_process():
    from focusclip.detect.run import end_with_parent

    end_with_parent()  # no parent process: nothing set up, nothing ends


# ------------------------------------------------------------------------------- options and the CLI
def test_detector_options_per_detector():
    from focusclip.cli._args import DETECTOR_NAMES
    from focusclip.detect import DETECTORS, detector_options
    from focusclip.errors import UsageError

    assert tuple(DETECTORS) == DETECTOR_NAMES
    assert detector_options("mediapipe", min_visibility=0.4, max_people=3) == {"min_visibility": 0.4, "max_people": 3}
    assert detector_options("mediapipe-tasks", weights="p.task", max_people=2) == {"weights": "p.task", "num_poses": 2}
    assert detector_options("rtmo", weights="r.onnx", min_visibility=0.2) == {"weights": "r.onnx",
                                                                             "min_keypoint_score": 0.2}
    for name, kwargs, message in [("mediapipe-tasks", {}, "needs --detector-weights.*PoseLandmarker .task"),
                                  ("rtmo", {}, "needs --detector-weights.*RTMO"),
                                  ("mediapipe", {"weights": "x.task"}, "models inside its package"),
                                  ("mediapipe", {"max_people": 0}, "at least 1"),
                                  ("openpose", {}, "unknown detector")]:
        with pytest.raises(UsageError, match=message):
            detector_options(name, **kwargs)


@pytest.mark.slow
@classic
def test_cli_detect_finds_every_person_and_max_people_keeps_the_strongest(tmp_path, capsys):
    from focusclip.cli import main
    from focusclip.io import read_jsonl

    comp = pp.composite(["hopper", "hopper"], [300, 260], [0, 50], "noise", gap=30)
    photos = tmp_path / "photos"
    photos.mkdir()
    comp.image.save(photos / "two.png")
    pp.texture("brick", (320, 240)).save(photos / "wall.png")
    assert main(["data", "detect", str(photos), "--out", str(tmp_path / "all.jsonl")]) == 0
    assert "people: 2" in capsys.readouterr().out
    recs = {r["image"].rsplit("/", 1)[-1]: r for r in read_jsonl(tmp_path / "all.jsonl")}
    assert len(recs["two.png"]["people"]) == 2 and recs["wall.png"]["people"] == []
    assert recs["two.png"]["detection"]["max_people"] is None
    assert all(p["face_box"] for p in recs["two.png"]["people"])
    assert main(["data", "detect", str(photos / "two.png"), "--out", str(tmp_path / "one.jsonl"),
                 "--max-people", "1"]) == 0
    one = read_jsonl(tmp_path / "one.jsonl")[0]
    assert len(one["people"]) == 1 and one["detection"]["max_people"] == 1
    assert main(["data", "detect", str(photos), "--out", str(tmp_path / "t.jsonl"), "--detector",
                 "mediapipe-tasks"]) == 2
    assert "needs --detector-weights" in capsys.readouterr().err


def test_mediapipe_without_the_classic_api_points_to_the_tasks_detector(monkeypatch):
    """What Python 3.13 users get from `pip install 'focusclip[detect]'` (mediapipe 1.x: Tasks only)."""
    from types import SimpleNamespace

    from focusclip.detect import DetectorUnavailable

    monkeypatch.setitem(sys.modules, "mediapipe", SimpleNamespace(__version__="1.2.3"))
    with pytest.raises(DetectorUnavailable, match=r"1\.2\.3 has no classic solutions.*--detector mediapipe-tasks "
                                                  r"--detector-weights pose_landmarker_full\.task.*https://"):
        create_detector("mediapipe")


def test_the_candidate_with_shoulders_and_the_surest_keypoints_stands_for_a_person():
    """Two views of one person: one claims every joint at 0.6 (guessed legs), the other sees the upper body
    at 0.95 with its legs invisible: the second is kept, so the guessed legs are not."""
    rgb = np.zeros((400, 400, 3), np.uint8)
    guessed = _stand(200, 60)[0], np.full(17, 0.6)
    seen = _stand(200, 60)[0] + 1, np.where(np.arange(17) < 11, 0.95, 0.1)
    answers = [[guessed], [seen]]

    def pose(crop):
        return answers.pop(0) if answers else []

    def faces(image):
        return [] if image.shape[:2] == rgb.shape[:2] else [((80.0, 80.0, 112.0, 112.0), 0.9)]

    found, _ = find_people(rgb, pose, faces, search=Search(windows=(0.9,), face_regions=False))
    assert len(found) == 1
    p = found[0]
    assert p.visible[:6].sum() == 0 and p.visible[skeleton.L_WRIST]  # MPII 0-5: ankles, knees, hips
    assert p.score == pytest.approx(0.95)
