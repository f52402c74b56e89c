"""Detection: the BlazePose -> MPII mapping on recorded landmarks, the real MediaPipe detector on a photo
that ships with matplotlib, the resumable `data detect` job, `heatmap/predict --detect`, and the RTMO
adapter on a small ONNX model written here with RTMO's inputs and outputs."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from focusclip import skeleton
from focusclip.cli import main
from focusclip.detect import create_detector, people_arrays
from focusclip.detect.mediapipe_pose import classic_available
from focusclip.detect.rtmo import RTMODetector, nms
from focusclip.detect.run import detect_images, errors_path
from focusclip.images import open_rgb
from focusclip.io import read_jsonl

#: tests of the offline detector: skipped where mediapipe is missing or has only the Tasks API (Python 3.13)
classic = pytest.mark.skipif(not classic_available(), reason="needs mediapipe's classic solutions "
                             "(pip install 'focusclip[detect]' on Python < 3.13)")

PORTRAIT = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # 512 x 600, head and shoulders

# BlazePose's 33 landmarks (pixels) and visibility on that portrait, recorded from mediapipe 0.10.14
LANDMARKS = [[269.8, 225.2], [292.2, 189.9], [305.1, 189.6], [319.0, 190.4], [246.5, 193.1], [230.2, 194.9],
             [214.3, 196.8], [339.4, 210.9], [195.0, 217.1], [297.2, 267.3], [244.5, 270.7], [455.6, 428.5],
             [95.6, 422.9], [547.8, 676.3], [55.4, 625.0], [527.0, 871.2], [66.0, 844.4], [545.8, 947.6],
             [46.8, 906.3], [496.2, 947.3], [86.2, 895.2], [484.2, 916.8], [98.4, 870.8], [389.4, 877.5],
             [155.5, 877.4], [374.2, 1222.8], [153.1, 1228.0], [365.0, 1525.2], [157.6, 1526.0], [370.3, 1585.3],
             [154.6, 1584.0], [323.1, 1633.2], [196.8, 1641.4]]
VISIBILITY = [1.0] * 11 + [0.999, 0.999, 0.346, 0.337, 0.041, 0.106, 0.035, 0.099, 0.062, 0.152, 0.071, 0.163,
                           0.007, 0.007, 0.001] + [0.0] * 7


def test_blazepose_to_mpii_on_recorded_landmarks():
    pts, vis = skeleton.blazepose_to_coco(LANDMARKS, VISIBILITY)
    assert pts[0].tolist() == LANDMARKS[0] and pts[3].tolist() == LANDMARKS[7]  # nose, left ear
    joints, flags = skeleton.coco_to_mpii(pts, np.where(vis >= 0.5, vis, 0))
    # the person's right shoulder is BlazePose 12 (image left), left shoulder 11
    assert joints[skeleton.R_SHOULDER].tolist() == LANDMARKS[12]
    assert joints[skeleton.L_SHOULDER].tolist() == LANDMARKS[11]
    thorax = (np.array(LANDMARKS[11]) + np.array(LANDMARKS[12])) / 2
    ears = (np.array(LANDMARKS[7]) + np.array(LANDMARKS[8])) / 2
    assert np.allclose(joints[skeleton.THORAX], thorax)
    assert np.allclose(joints[skeleton.UPPER_NECK], thorax + 0.5 * (ears - thorax))
    assert np.allclose(joints[skeleton.HEAD_TOP], thorax + 1.5 * (ears - thorax))
    # elbows (0.35) and everything below are under the 0.5 threshold: invisible, [-1, -1]
    visible = {skeleton.MPII_JOINTS[j] for j in np.flatnonzero(flags)}
    assert visible == {"r_shoulder", "l_shoulder", "thorax", "upper_neck", "head_top"}
    assert joints[skeleton.R_HIP].tolist() == [-1, -1]


@pytest.fixture(scope="module")
def mediapipe():
    with create_detector("mediapipe") as d:
        yield d


@classic
def test_real_detector_finds_face_and_shoulders(mediapipe):
    image = open_rgb(PORTRAIT)
    det = mediapipe.detect(image)
    assert len(det.people) == 1 and len(det.faces) == 1
    person = det.people[0]
    x1, y1, x2, y2 = person.face_box
    # the face: eyes and nose (~ x 215..320, y 190..225) and the mouth (y ~270) inside the box, which is
    # a face-sized part of the picture
    assert x1 < 210 and x2 > 330 and y1 < 185 and y2 > 280
    assert 0.05 < (x2 - x1) * (y2 - y1) / (image.width * image.height) < 0.3
    r, left = person.joints[skeleton.R_SHOULDER], person.joints[skeleton.L_SHOULDER]
    assert person.visible[skeleton.R_SHOULDER] and person.visible[skeleton.L_SHOULDER]
    assert r[0] < (x1 + x2) / 2 < left[0]  # her right shoulder on the image's left
    assert r[1] > y2 and left[1] > y2 and abs(r[1] - left[1]) < 40  # below the face, level
    assert person.visible[skeleton.HEAD_TOP] and person.joints[skeleton.HEAD_TOP][1] < y1 + 0.3 * (y2 - y1)
    assert not person.visible[skeleton.R_ANKLE]


@classic
def test_detect_job_is_resumable_and_survives_bad_files(mediapipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tmp_path = tmp_path.relative_to(tmp_path)  # relative paths: records point back from their own folder
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copy(PORTRAIT, photos / "hopper.jpg")
    Image.open(PORTRAIT).resize((256, 300)).save(photos / "sub" / "small.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "data" / "records.jsonl"
    counts = detect_images([photos], out, mediapipe)
    assert counts.done["images"] == 2 and counts.skipped == {"InputError": 1}
    assert counts.examples["InputError"] == [str(photos / "broken.jpg")]
    recs = read_jsonl(out)
    assert [r["image"] for r in recs] == ["../photos/hopper.jpg", "../photos/sub/small.png"]
    rec = recs[0]
    assert (rec["width"], rec["height"]) == (512, 600) and rec["detection"]["max_people"] is None  # no limit
    assert rec["detection"]["faces"] == 1 and len(rec["people"][0]["joints"]) == 16
    assert rec["people"][0]["face_box"] and rec["meta"]["detector"]["name"] == "mediapipe"
    assert read_jsonl(errors_path(out))[0]["image"] == "../photos/broken.jpg"
    again = detect_images([photos], out, mediapipe)  # finished images skipped, the bad one retried
    assert again.notes["images already in the output (skipped)"] == 2 and again.skipped == {"InputError": 1}
    assert len(read_jsonl(out)) == 2


@classic
def test_cli_detect_then_describe_and_draw(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(PORTRAIT, photos / "hopper.jpg")
    out = tmp_path / "records.jsonl"
    assert main(["data", "detect", str(photos), "--out", str(out)]) == 0
    assert "people: 1" in capsys.readouterr().out
    assert main(["describe", str(out), "--backend", "rules", "--out", str(tmp_path / "d.jsonl"),
                 "--records-out", str(tmp_path / "captioned.jsonl")]) == 0
    cap = read_jsonl(tmp_path / "captioned.jsonl")[0]["captions"][0]
    assert cap.startswith("There is one person in image.") and ("shoulder" in cap or "head" in cap)
    overlay = tmp_path / "overlay.png"
    assert main(["heatmap", str(PORTRAIT), "--detect", "--out", str(overlay), "--save-heatmap",
                 str(tmp_path / "h.png")]) == 0
    heat = np.asarray(Image.open(tmp_path / "h.png"), dtype=float) / 255
    assert heat.shape == (600, 512) and heat[300, 270] > 0.8 and heat[590, 10] < 0.05  # on her, not the corner
    assert Image.open(overlay).size == (512, 600)


@classic
def test_predict_detect_writes_roi_overlay(tmp_path, capsys):
    import focusclip

    model = focusclip.create_model("focusclip-tiny")
    focusclip.save_model(model, tmp_path / "m", focusclip.get_tokenizer("focusclip-tiny"))
    assert main(["predict", str(PORTRAIT), "--model", str(tmp_path / "m"), "--labels", "a,b", "--json",
                 "--detect", "--overlay-dir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["overlay"].endswith("grace_hopper_roi.png") and (tmp_path / "grace_hopper_roi.png").is_file()


# ------------------------------------------------------------------------------------------ RTMO
STAND = np.array([(320, 60), (330, 50), (310, 50), (345, 60), (295, 60), (370, 120), (270, 120), (380, 190),
                  (260, 190), (385, 250), (255, 250), (350, 260), (290, 260), (352, 350), (288, 350), (354, 440),
                  (286, 440)], dtype=np.float32) / 2  # canvas pixels (the image is scaled by 0.5)


def write_rtmo_onnx(path, n=3):
    """An ONNX model with RTMO's signature: input (1, 3, 640, 640) -> dets (1, N, 5), keypoints (1, N, 17, 3).

    Its outputs are constants plus 0 * mean(input), so the input is really consumed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dets = np.array([[[120, 20, 200, 230, 0.9], [122, 22, 202, 232, 0.8], [400, 300, 450, 400, 0.2]]], np.float32)
    kpts = np.zeros((1, n, 17, 3), np.float32)
    kpts[0, 0, :, :2], kpts[0, 0, :, 2] = STAND, 0.9
    kpts[0, 0, 16, 2] = 0.1  # right ankle unsure
    kpts[0, 1, :, :2], kpts[0, 1, :, 2] = STAND + 1, 0.8
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"]),
             helper.make_node("Add", ["dets_c", "z"], ["dets"]),
             helper.make_node("Add", ["kpts_c", "z"], ["keypoints"])]
    inits = [numpy_helper.from_array(dets, "dets_c"), numpy_helper.from_array(kpts, "kpts_c"),
             numpy_helper.from_array(np.array(0, np.float32), "zero")]
    graph = helper.make_graph(
        nodes, "rtmo-like", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, n, 5]),
         helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [1, n, 17, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_rtmo_adapter_maps_boxes_keypoints_and_suppresses(tmp_path):
    pytest.importorskip("onnxruntime")
    det = RTMODetector(write_rtmo_onnx(tmp_path / "end2end.onnx"))
    image = Image.new("RGB", (1280, 720), (10, 20, 30))  # ratio min(640/720, 640/1280) = 0.5
    tensor, ratio = det.preprocess(image)
    assert tensor.shape == (1, 3, 640, 640) and ratio == 0.5
    assert tensor[0, :, 0, 0].tolist() == [30, 20, 10] and tensor[0, 0, 639, 0] == 114  # BGR, grey padding
    people = det.detect(image).people
    assert len(people) == 1  # the overlapping second is suppressed, the third is under the score threshold
    p = people[0]
    assert p.box == (240.0, 40.0, 400.0, 460.0) and p.score == pytest.approx(0.9)
    assert p.joints[skeleton.L_WRIST].tolist() == [385, 250] and p.joints[skeleton.R_KNEE].tolist() == [288, 350]
    assert not p.visible[skeleton.R_ANKLE] and p.visible.sum() == 15
    joints, vis = people_arrays(people)
    assert joints.shape == (1, 16, 2) and vis.dtype == bool


def test_rtmo_weights_by_zip_and_url_and_bad_models(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    onnx_path = write_rtmo_onnx(tmp_path / "end2end.onnx")
    archive = tmp_path / "rtmo-s_test-640x640.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(onnx_path, "rtmo-s_test/end2end.onnx")
    monkeypatch.setenv("FOCUSCLIP_CACHE", str(tmp_path / "cache"))
    assert RTMODetector(archive).path == tmp_path / "cache" / "rtmo-s_test-640x640.onnx"
    by_url = RTMODetector(archive.as_uri())  # the download path, on a file:// URL
    assert (tmp_path / "cache" / archive.name).is_file() and by_url.path.suffix == ".onnx"
    with pytest.raises(FileNotFoundError, match="RTMO weights not found"):
        RTMODetector(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        RTMODetector(tmp_path / "junk.onnx")
    assert main(["data", "detect", str(tmp_path), "--out", str(tmp_path / "r.jsonl"), "--detector", "rtmo"]) == 2  # usage


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.45) == [1, 2]


@pytest.mark.slow
@classic
def test_detect_job_with_worker_processes_matches_one_process(tmp_path):
    import functools

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.open(PORTRAIT).rotate(5 * i).save(photos / f"p{i}.jpg")
    (photos / "p1b.jpg").write_bytes(b"broken")
    with create_detector("mediapipe") as det:
        one = detect_images([photos], tmp_path / "one.jsonl", det)
        two = detect_images([photos], tmp_path / "two.jsonl", det, workers=2,
                            factory=functools.partial(create_detector, "mediapipe"))
    assert one.done == two.done and one.skipped == two.skipped == {"InputError": 1}
    strip = [{k: v for k, v in r.items() if k != "image"} for r in read_jsonl(tmp_path / "one.jsonl")]
    assert strip == [{k: v for k, v in r.items() if k != "image"} for r in read_jsonl(tmp_path / "two.jsonl")]


def test_missing_mediapipe_is_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if not installed
    assert main(["heatmap", str(PORTRAIT), "--detect", "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'focusclip[detect]'" in err


# ------------------------------------------------------------------------------ MediaPipe Tasks
def _fake_task(path, *members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def test_tasks_detector_needs_a_model_file_and_says_which(tmp_path, monkeypatch):
    pytest.importorskip("mediapipe.tasks.python.vision")
    from focusclip.detect.mediapipe_tasks import TasksPoseDetector

    with pytest.raises(ValueError, match="needs its model: a PoseLandmarker .task file"):
        create_detector("mediapipe-tasks")
    with pytest.raises(FileNotFoundError, match="PoseLandmarker model not found: .*missing.task"):
        TasksPoseDetector(tmp_path / "missing.task")
    (tmp_path / "plain.task").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a MediaPipe .task bundle"):
        TasksPoseDetector(tmp_path / "plain.task")
    with pytest.raises(ValueError, match="num_poses must be at least 1"):
        TasksPoseDetector(tmp_path / "plain.task", num_poses=0)
    # a bundle MediaPipe itself refuses (the classic solution's models, without the Tasks metadata)
    import mediapipe

    root = Path(mediapipe.__file__).parent / "modules"
    bundle = _fake_task(tmp_path / "classic.task",
                        ("pose_detector.tflite", (root / "pose_detection" / "pose_detection.tflite").read_bytes()),
                        ("pose_landmarks_detector.tflite",
                         (root / "pose_landmark" / "pose_landmark_full.tflite").read_bytes()))
    with pytest.raises(ValueError, match="MediaPipe could not load it as a PoseLandmarker model"):
        TasksPoseDetector(bundle)
    # by URL: downloaded once into the cache, then loaded from there
    monkeypatch.setenv("FOCUSCLIP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="could not load"):
        TasksPoseDetector(bundle.as_uri())
    assert (tmp_path / "cache" / "classic.task").read_bytes() == bundle.read_bytes()


def test_tasks_landmarks_become_mpii_people():
    from types import SimpleNamespace

    from focusclip.detect.mediapipe_tasks import people_from_landmarks

    w, h = 512, 1700  # the recorded landmarks reach y = 1641: all inside
    pose = [SimpleNamespace(x=x / w, y=y / h, visibility=v) for (x, y), v in zip(LANDMARKS, VISIBILITY, strict=True)]
    nobody = [SimpleNamespace(x=0.5, y=0.5, visibility=0.1)] * 33
    people = people_from_landmarks([pose, nobody], w, h, 0.5)
    assert len(people) == 1  # a pose with no joint above the threshold is no person
    p = people[0]
    assert np.allclose(p.joints[skeleton.R_SHOULDER], LANDMARKS[12]) and p.visible[skeleton.HEAD_TOP]
    assert {skeleton.MPII_JOINTS[j] for j in np.flatnonzero(p.visible)} == {
        "r_shoulder", "l_shoulder", "thorax", "upper_neck", "head_top"}
    tall = [SimpleNamespace(x=x / w, y=y / 400, visibility=v) for (x, y), v in zip(LANDMARKS, VISIBILITY, strict=True)]
    cut = people_from_landmarks([tall], w, 400, 0.5)[0]  # a photo 400 high: shoulders (y 423-429) are outside
    assert not cut.visible[skeleton.R_SHOULDER] and not cut.visible[skeleton.THORAX]
    with pytest.raises(RuntimeError, match="33"):
        people_from_landmarks([pose[:20]], w, h, 0.5)


# ------------------------------------------------------------------------------ RTMPose (rtmlib)
def _const_onnx(path, inputs, outputs):
    """An ONNX model: one float input of shape ``inputs`` -> constant outputs (name -> array) + 0 * mean(input)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0), helper.make_node("Mul", ["m", "zero"], ["z"])]
    inits = [numpy_helper.from_array(np.array(0, np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name]))
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_c"))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, "const", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(inputs))],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def write_rtmpose_onnx(path):
    """RTMPose's signature: (1, 3, 256, 192) -> simcc_x (1, 17, 384), simcc_y (1, 17, 512); every keypoint at
    the crop's centre (96, 128) with confidence 0.9, except keypoint 16 (0.1)."""
    sx, sy = np.zeros((1, 17, 384)), np.zeros((1, 17, 512))
    sx[0, :, 192], sy[0, :, 256] = 0.9, 0.9
    sx[0, 16, 192], sy[0, 16, 256] = 0.1, 0.1
    return _const_onnx(path, (1, 3, 256, 192), {"simcc_x": sx, "simcc_y": sy})


def test_rtmpose_on_yolox_boxes_through_rtmlib(tmp_path):
    pytest.importorskip("rtmlib")
    from focusclip.detect.rtmpose import RTMPoseDetector

    pose = write_rtmpose_onnx(tmp_path / "rtmpose.onnx")
    dets = np.array([[[100, 50, 300, 450, 0.9], [400, 100, 500, 300, 0.2]]])  # canvas pixels; the second is unsure
    yolox = _const_onnx(tmp_path / "yolox.onnx", (1, 3, 640, 640), {"dets": dets})
    with RTMPoseDetector(pose, person_weights=yolox) as det:
        assert det.pose.model_input_size == (192, 256) and det.describe()["person_boxes"] == "yolox.onnx"
        people = det.detect(Image.new("RGB", (1280, 720), (90, 90, 90))).people  # YOLOX ratio 0.5
    assert len(people) == 1
    p = people[0]
    # every keypoint at the box's centre (200, 250) * 2: the crop's centre mapped back by rtmlib
    assert np.allclose(p.joints[skeleton.L_WRIST], (400, 500)) and not p.visible[skeleton.R_ANKLE]
    assert p.score == pytest.approx(0.9)
    with pytest.raises(ValueError, match="not a loadable RTMPose ONNX model"):
        (tmp_path / "junk.onnx").write_bytes(b"junk")
        RTMPoseDetector(tmp_path / "junk.onnx", person_weights=yolox)
    with pytest.raises(FileNotFoundError, match="RTMPose weights not found"):
        RTMPoseDetector(tmp_path / "none.onnx")


@pytest.mark.slow
@classic
def test_rtmpose_on_mediapipe_people_offline(tmp_path):
    pytest.importorskip("rtmlib")
    pose = write_rtmpose_onnx(tmp_path / "rtmpose.onnx")
    with create_detector("rtmpose", weights=pose) as det:
        found = det.detect(open_rgb(PORTRAIT))
        assert det.describe()["person_boxes"] == "mediapipe"
    assert len(found.people) == 1 and found.people[0].face_box is not None and len(found.faces) >= 1
    # the fake model puts every joint at the middle of the person box mediapipe found: on her, in the photo
    x, y = found.people[0].joints[skeleton.THORAX]
    assert 150 < x < 370 and 150 < y < 600
