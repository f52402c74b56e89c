"""Answer time of ``focusclip serve`` for one photo: through the JSON API and through the page.

The server runs in this process (uvicorn in a thread on 127.0.0.1) over a models root holding one model:
``--model-dir`` (e.g. the demo's ``runs/demo/runs/focusclip-seed0/model-final``) or, by default, an
untrained ``focusclip-lite0-minilm`` saved at 128 px: the demo's architecture and image size, so the
same cost as the demo's trained model. The photo is a person from the synthetic world, saved at each
``--photo-sizes`` (default 640x480 and a 12-megapixel 4000x3000 "phone photo").

Measured, median of ``--repeats`` after one warm-up:

* ``api same labels``: ``POST /api/predict``, the label set's class embeddings cached;
* ``api new labels``: a new label set each call, so the text tower runs too (what a first click costs);
* ``api + detector``: same labels, with ``detect=true``: the server's pose detector (MediaPipe, when it
  is installed) finds the person first, as the page does by default;
* ``page``: headless Chromium (Debian's chromium + chromedriver) types a new label set and clicks
  Classify; the time from the click to the bars on the page, timed in the page; ``page upload`` is the
  time from choosing the file to "ready" (transfer + check). The page is skipped when no browser is here.

    python benchmarks/serve.py [--model-dir DIR] [--repeats 10] [--markdown] [--screenshot docs/images/serve.png]

``--screenshot`` also saves the page with a few synthetic photos, their keypoints and the activity
preset, as shown in the README.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _browser  # noqa: E402
import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)

DEFAULT_ARCH = "focusclip-lite0-minilm"
DEFAULT_IMAGE_SIZE = 128
LABELS = ["running", "walking", "jumping", "sitting", "standing", "waving"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", help="a saved model directory (default: an untrained focusclip-lite0-minilm)")
    p.add_argument("--arch", default=DEFAULT_ARCH, help="architecture of the default model (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="its image size (default: %(default)s)")
    p.add_argument("--photo-sizes", default="640x480,4000x3000", help="photo sizes WxH, comma separated")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", default="1,2", help="torch CPU thread counts to measure, comma separated")
    p.add_argument("--no-page", action="store_true", help="only the JSON API")
    p.add_argument("--screenshot", help="also save a screenshot of the page (PNG) here")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--json", dest="json_out", help="write the results as JSON here")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------- inputs
def save_default_model(models_root: Path, arch: str, image_size: int) -> Path:
    """An untrained model of the demo's architecture and size, saved like a trained one."""
    import focusclip

    out = models_root / f"{arch}-{image_size}px"
    model = focusclip.create_model(arch, vision={"image_size": image_size})
    focusclip.save_model(model, out, focusclip.get_tokenizer(arch))
    return out


def prepare_models_root(models_root: Path, model_dir: str | None, arch: str, image_size: int) -> Path:
    """A models root holding a copy of ``model_dir``, or an untrained ``arch`` at ``image_size``."""
    if model_dir:
        import shutil

        shutil.copytree(model_dir, models_root / Path(model_dir).name)
    else:
        save_default_model(models_root, arch, image_size)
    return models_root


def synthetic_people(folder: Path, n: int, render_size: int = 320) -> list[dict[str, Any]]:
    """``n`` synthetic-world people: ``{"image": path, "record": record}`` (eval split, fixed seed)."""
    from focusclip.data.records import read_records
    from focusclip.data.synthetic import generate_world

    info = generate_world(folder, n=1, seed=0, image_size=render_size, eval_n=n, show_progress=False)
    records = read_records(info["eval_jsonl"])[:n]
    return [{"image": folder / r["image"], "record": r} for r in records]


def write_photo(src: Path, size: tuple[int, int], out: Path) -> Path:
    """The photo at ``size`` (a phone-sized JPEG for the big sizes)."""
    from PIL import Image

    with Image.open(src) as im:
        im.convert("RGB").resize(size, Image.BICUBIC).save(out, format="JPEG", quality=90)
    return out


def write_keypoints(record: dict[str, Any], out: Path) -> Path:
    """The record's people as a keypoints JSON (the format ``focusclip heatmap --keypoints`` reads)."""
    keep = {k: record[k] for k in ("people", "width", "height") if k in record}
    out.write_text(json.dumps(keep))
    return out


# ------------------------------------------------------------------------------------- timing
@contextlib.contextmanager
def running(models_root: Path) -> Iterator[Any]:
    from focusclip.serve.app import BackgroundServer, ServeConfig, create_app

    app = create_app(ServeConfig(models_root=models_root, registered=False, device="cpu", detector="auto"))
    with BackgroundServer(app) as server:
        yield server, app.state.service


def time_api(url: str, photo: Path, repeats: int, detect: bool = False) -> dict[str, Any]:
    import httpx

    files = [("images", (photo.name, photo.read_bytes(), "image/jpeg"))]
    counter = iter(range(10**9))
    with httpx.Client(base_url=url, timeout=120) as client:
        def call(labels: list[str], detect: bool = False) -> dict:
            data = {"labels": ", ".join(labels), "topk": "3", "detect": str(detect).lower()}
            r = client.post("/api/predict", files=files, data=data)
            r.raise_for_status()
            return r.json()

        same = C.time_fn(lambda: call(LABELS), warmup=1, repeats=repeats)
        new = C.time_fn(lambda: call([*LABELS, f"posing {next(counter)}"]), warmup=1, repeats=repeats)
        detected = C.time_fn(lambda: call(LABELS, detect=True), warmup=1, repeats=repeats) if detect else None
    return {"api_same_labels_s": same["median_s"], "api_new_labels_s": new["median_s"],
            "api_detect_s": detected["median_s"] if detected else None, "server_seconds": same["result"]["seconds"]}


def time_page(browser: Any, url: str, photo: Path, repeats: int) -> dict[str, Any]:
    import statistics

    page = _browser.ServePage(browser, url, timeout=120).open()
    upload = page.upload_photos([photo])
    page.set_topk(len(LABELS) + 1)  # every label is shown, so the new one marks the new answer
    times = []
    for i in range(repeats + 1):  # the first is the warm-up
        marker = f"posing {i}"
        page.set_labels(", ".join([*LABELS, marker]))
        times.append(page.classify(marker=marker))
    page.leave()
    return {"page_s": statistics.median(times[1:]), "page_max_s": max(times[1:]), "page_upload_s": upload,
            "external_requests": len(browser.external_requests())}


def screenshot(url: str, people: list[dict[str, Any]], folder: Path, out: Path) -> Path:
    """The page with the synthetic people, their keypoints and the synthetic activity preset, classified."""

    photos, rois = [], []
    for i, person in enumerate(people):
        photos.append(write_photo(person["image"], (320, 320), folder / f"person{i + 1}.jpg"))
        rois.append(write_keypoints(person["record"], folder / f"person{i + 1}.json"))
    with _browser.Chromium(width=1280, height=1280) as browser:
        page = _browser.ServePage(browser, url, timeout=120).open()
        page.upload_photos(photos)
        page.upload_rois(rois)
        page.set_labels("running, walking, jumping, sitting, standing, waving, cheering, kicking")
        page.classify(marker="classified")
        page.screenshot(out, palette=True)
        page.leave()
    return out


# --------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging()
    import torch

    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.photo_sizes.split(",") if s.strip()]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    default_threads = torch.get_num_threads()
    reason = None if not args.no_page else "--no-page"
    reason = reason or _browser.unavailable_reason()
    with tempfile.TemporaryDirectory(prefix="focusclip-bench-serve-") as tmp:
        tmp = Path(tmp)
        models_root = prepare_models_root(tmp / "models", args.model_dir, args.arch, args.image_size)
        people = synthetic_people(tmp / "world", 3)
        rows = []
        with running(models_root) as (server, service), contextlib.ExitStack() as stack:
            model = service.models()[0]
            browser = stack.enter_context(_browser.Chromium()) if reason is None else None
            for w, h in sizes:
                photo = write_photo(people[0]["image"], (w, h), tmp / f"photo-{w}x{h}.jpg")
                for n_threads in threads:
                    torch.set_num_threads(n_threads)  # the server runs in this process
                    row = {"photo": f"{w}x{h}", "photo_kb": round(photo.stat().st_size / 1024), "threads": n_threads}
                    row.update(time_api(server.url, photo, args.repeats, detect=service.people_finder is not None))
                    if browser is not None:
                        row.update(time_page(browser, server.url, photo, args.repeats))
                    rows.append(row)
            torch.set_num_threads(default_threads)
            shot = screenshot(server.url, people, tmp, Path(args.screenshot)) if args.screenshot else None
    result = described_run("serve", argv, model.title, args.repeats, rows, shot, page_skipped=reason)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))
    return result


def described_run(name: str, argv: list[str] | None, model: str, repeats: int, rows: list[dict[str, Any]],
                  shot: Path | None, **extra: Any) -> dict[str, Any]:
    """A benchmark's result: what ran, where, on which model, its rows and the screenshot taken."""
    return {"benchmark": name, "date": C.now_utc(), "command": C.command_line(f"{name}.py", argv),
            "machine": C.machine_description("cpu"), "model": model, "repeats": repeats, **extra, "rows": rows,
            "screenshot": str(shot) if shot else None}


def markdown(result: dict[str, Any]) -> str:
    headers = ["photo", "JPEG kB", "threads", "API, same labels (s)", "API, new labels (s)", "API + detector (s)",
               "page: click to bars (s)", "page: slowest (s)", "page: upload to ready (s)"]
    rows = [[r["photo"], r["photo_kb"], r["threads"], r["api_same_labels_s"], r["api_new_labels_s"], r.get("api_detect_s"),
             r.get("page_s"), r.get("page_max_s"), r.get("page_upload_s")] for r in result["rows"]]
    lines = [f"`{result['command']}` ({result['date']}); model {result['model']}; median of {result['repeats']}",
             C.machine_line(result["machine"]), "", C.markdown_table(headers, rows)]
    if result["page_skipped"]:
        lines.append(f"\npage not measured: {result['page_skipped']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
