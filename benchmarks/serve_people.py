"""``focusclip serve`` asking about each person: answer times through the JSON API, and the page's screenshot.

A composite of the portraits that ship inside packages (matplotlib's ``grace_hopper``, scikit-image's
``astronaut`` and ``camera``: three people side by side, tests/portraits.py) with a boxes file naming
them, served over a models root holding one model (``--model-dir``, or an untrained
``focusclip-lite0-minilm`` at 128 px: the demo's architecture and cost). Medians of ``--repeats`` after
one warm-up, each a ``POST /api/predict`` with the same labels:

* ``whole``: ``focus=false``, the whole image only;
* ``every person``: ``focus=MODE`` for each ``--modes``: the whole image and one answer per person;
* ``one person``: ``focus=MODE, person=2``.

    python benchmarks/serve_people.py [--model-dir DIR] [--modes auto,crop,blur] [--screenshot docs/images/serve-people.png]

``--screenshot``: the page (headless Chromium) after Classify and a click on person 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # portraits.py: the packaged portraits pasted side by side

import _browser  # noqa: E402
import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)
from portraits import write_composite  # noqa: E402
from serve import DEFAULT_ARCH, DEFAULT_IMAGE_SIZE, described_run, prepare_models_root, running  # noqa: E402

LABELS = ["a scientist", "an astronaut", "a photographer", "a soldier", "a dancer", "a chef"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", help="a saved model directory (default: an untrained focusclip-lite0-minilm)")
    p.add_argument("--modes", default="auto,crop,blur,circle,dim", help="focus modes to time, comma separated")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--screenshot", help="also save a screenshot of the page (PNG) here")
    p.add_argument("--json", dest="json_out", help="write the results as JSON here")
    return p.parse_args(argv)


def time_api(url: str, photo: Path, boxes: list[list[float]], repeats: int, **fields: str) -> float:
    import httpx

    data = {"labels": ", ".join(LABELS), "subjects": json.dumps(boxes), **fields}
    files = [("images", (photo.name, photo.read_bytes(), "image/png"))]
    times = []
    with httpx.Client(timeout=300) as client:
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            r = client.post(url + "/api/predict", files=files, data=data)
            r.raise_for_status()
            if i:
                times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4)


def screenshot(url: str, photo: Path, boxes_file: Path, out: Path) -> Path:
    with _browser.Chromium(width=1280, height=760) as browser:
        page = _browser.ServePage(browser, url, timeout=300).open()
        page.upload_photos([photo])
        page.upload_rois([boxes_file])
        page.set_labels(", ".join(LABELS))
        page.classify(marker="asked about")
        page.click_person(2)
        browser.driver.execute_script("document.getElementById('fc-cards').scrollIntoView({block: 'end'})")
        page.screenshot(out, palette=True)
        page.leave()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="focusclip-bench-people-") as tmp:
        tmp = Path(tmp)
        models_root = prepare_models_root(tmp / "models", args.model_dir, DEFAULT_ARCH, DEFAULT_IMAGE_SIZE)
        photo, boxes = write_composite(tmp, ["grace_hopper", "astronaut", "camera"], height=240, scales=[1.0, 0.85, 0.9])
        boxes_file = tmp / "group.json"
        boxes_file.write_text(json.dumps(boxes))
        described = f"{_size(photo)} composite of the packaged portraits, {len(boxes)} people"
        with running(models_root) as (server, service):
            model = service.models()[0]
            rows = [{"request": "whole image", "seconds": time_api(server.url, photo, boxes, args.repeats, focus="false")}]
            for mode in modes:
                rows.append({"request": f"every person ({len(boxes)}), {mode}",
                             "seconds": time_api(server.url, photo, boxes, args.repeats, focus=mode)})
                rows.append({"request": f"person 2, {mode}",
                             "seconds": time_api(server.url, photo, boxes, args.repeats, focus=mode, person="2")})
            shot = None
            if args.screenshot and _browser.unavailable_reason() is None:
                shot = screenshot(server.url, photo, boxes_file, Path(args.screenshot))
    result = described_run("serve_people", argv, model.title, args.repeats, rows, shot, photo=described)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


def _size(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return f"{im.width}x{im.height}"


if __name__ == "__main__":
    main()
