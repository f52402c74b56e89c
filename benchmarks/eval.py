"""Zero-shot evaluation speed: batched ``focusclip.zeroshot.evaluate`` vs the reference's one-image-at-a-time
loop that re-encodes every class prompt for every image; and the batched evaluation with the evaluation
image cache (``focusclip.zeroshot.image_cache``): its first pass (decodes and keeps) and a repeated pass
(every image already decoded: only the forward pass).

Both run the same tiny model on the same generated Stanford 40 set (written in its distributed layout:
``JPEGImages/``, ``ImageSplits/``), in eval mode under ``torch.inference_mode``; the script checks that
they predict the same top-1 class for every image, then prints images/s for both and the ratio.

    PYTHONPATH=src python benchmarks/eval.py [--images 200] [--batch-size 64] [--workers 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)

STANFORD40_ACTIONS = ["applauding", "blowing_bubbles", "brushing_teeth", "cleaning_the_floor", "climbing", "cooking", "cutting_trees", "cutting_vegetables", "drinking", "feeding_a_horse", "fishing", "fixing_a_bike", "fixing_a_car", "gardening", "holding_an_umbrella", "jumping", "looking_through_a_microscope", "looking_through_a_telescope", "playing_guitar", "playing_violin", "pouring_liquid", "pushing_a_cart", "reading", "phoning", "riding_a_bike", "riding_a_horse", "rowing_a_boat", "running", "shooting_an_arrow", "smoking", "taking_photos", "texting_message", "throwing_frisby", "using_a_computer", "walking_the_dog", "washing_dishes", "watching_TV", "waving_hands", "writing_on_a_board", "writing_on_a_book"]


def write_stanford40(root: Path, n_images: int, size: tuple[int, int] = (320, 240), seed: int = 0) -> None:
    """``n_images`` random-noise JPEGs spread over the 40 actions, in the Stanford 40 layout."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "ImageSplits").mkdir(exist_ok=True)
    names = []
    for i in range(n_images):
        action = STANFORD40_ACTIONS[i % len(STANFORD40_ACTIONS)]
        name = f"{action}_{i // len(STANFORD40_ACTIONS) + 1:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / "JPEGImages" / name)
        names.append(name)
    (root / "ImageSplits/actions.txt").write_text(
        "action_name\tnumber_of_images\n" + "".join(f"{a}\t0\n" for a in STANFORD40_ACTIONS))
    (root / "ImageSplits/test.txt").write_text("\n".join(names) + "\n")


def one_at_a_time(model: Any, tokenizer: Any, transform: Any, samples: list, prompts: list[str], device) -> list[int]:
    """The reference's loop: per image, open it, encode it alone, re-tokenise and re-encode all prompts."""
    import torch

    from focusclip.zeroshot.images import open_sample

    preds = []
    with torch.inference_mode():
        for s in samples:
            image = transform(open_sample(s))[None].to(device)
            tokens = {k: v.to(device) for k, v in tokenizer(prompts).items()}
            text = model.encode_text(tokens, normalize=True)
            img = model.encode_image(image, normalize=True)
            preds.append(int((img @ text.T).argmax()))
    return preds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="clip-tiny", help="registered model name or saved model directory")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each; the fastest is reported")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    import focusclip
    from focusclip.runtime import resolve_device
    from focusclip.zeroshot.classifier import build_zero_shot_classifier
    from focusclip.zeroshot.datasets import load_benchmark
    from focusclip.zeroshot.evaluate import rank_images
    from focusclip.zeroshot.image_cache import EvalImageCache
    from focusclip.zeroshot.tasks import resolve_tasks

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def best_time(fn: Any) -> tuple[float, Any]:
        times, out = [], None
        for _ in range(args.repeats):
            sync()
            t = time.perf_counter()
            out = fn()
            sync()
            times.append(time.perf_counter() - t)
        return min(times), out
    if Path(args.model).is_dir():  # a saved model directory (carries its own tokenizer files)
        from focusclip.predict import eval_transform

        model = focusclip.load_model(args.model)
        transform = eval_transform(model)
    else:
        model, _, transform = focusclip.create_model_and_transforms(args.model)
    model.to(device).eval()
    tokenizer = focusclip.get_tokenizer(args.model)
    (task,) = resolve_tasks("stanford40")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "stanford40"
        write_stanford40(root, args.images)
        data = load_benchmark("stanford40", root, "test")
        prompts = [p[0] for p in task.prompts(data.classes)]
        labels_ok = len(data.samples) == args.images

        def batched(cache: EvalImageCache | None = None) -> np.ndarray:
            emb = build_zero_shot_classifier(model, tokenizer, task.prompts(data.classes), device)
            return rank_images(model, transform, data.samples, emb, device, args.batch_size, args.workers,
                               desc="batched", image_cache=cache)[:, 0]

        batched()  # warm-up (thread pools, allocator)
        t_batched, top1_batched = best_time(batched)
        t_first, _ = best_time(lambda: batched(EvalImageCache()))  # a fresh cache: decodes and keeps
        cache = EvalImageCache()
        batched(cache)
        t_repeat, top1_cached = best_time(lambda: batched(cache))  # every image already decoded
        one_at_a_time(model, tokenizer, transform, data.samples[:5], prompts, device)  # warm-up
        t_single, top1_single = best_time(
            lambda: one_at_a_time(model, tokenizer, transform, data.samples, prompts, device))
    agree = float(np.mean(np.asarray(top1_single) == top1_batched))
    result = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/eval.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{C.cpu_model()}, {C.nproc()} CPUs, load {os.getloadavg()[0]:.1f}, "
                   + (f"{torch.cuda.get_device_name(device)}, " if device.type == "cuda" else "") +
                   f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}",
        "model": args.model, "images": args.images, "classes": len(data.classes),
        "batch_size": args.batch_size, "workers": args.workers, "repeats": args.repeats,
        "batched_images_per_s": round(args.images / t_batched, 1),
        "one_at_a_time_images_per_s": round(args.images / t_single, 1),
        "speedup": round(t_single / t_batched, 1), "top1_agreement": agree, "all_images_loaded": labels_ok,
        "cached_first_pass_images_per_s": round(args.images / t_first, 1),
        "cached_repeat_pass_images_per_s": round(args.images / t_repeat, 1),
        "speedup_cached_first": round(t_single / t_first, 1),
        "speedup_cached_repeat": round(t_single / t_repeat, 1),
        "cached_top1_equal": bool(np.array_equal(top1_cached, top1_batched)),
    }
    print(json.dumps(result, indent=2))
    print(f"batched: {result['batched_images_per_s']} images/s | one at a time: "
          f"{result['one_at_a_time_images_per_s']} images/s | speedup {result['speedup']}x | "
          f"top-1 agreement {agree:.3f}")
    print(f"image cache: first pass {result['cached_first_pass_images_per_s']} images/s "
          f"({result['speedup_cached_first']}x the loop), repeated pass {result['cached_repeat_pass_images_per_s']} "
          f"images/s ({result['speedup_cached_repeat']}x), same top-1: {result['cached_top1_equal']}")
    return result


if __name__ == "__main__":
    main()
