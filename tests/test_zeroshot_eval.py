"""Zero-shot evaluation end to end on real-layout fixtures: an oracle model must score 100% on every task
(labels and prompts line up), a shuffled oracle must not; metrics against hand computations; headline;
results-file extension; unknown tasks; absent datasets; the tiny model and the CLI."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark_layouts import WRITERS, write_all, write_fer2013, write_synthetic, write_utkface
from focusclip.zeroshot.evaluate import evaluate, model_fingerprint
from focusclip.zeroshot.metrics import confusion_matrix, headline, per_class_recall, task_metrics
from focusclip.zeroshot.tasks import fill_template, headline_spec, load_registry, resolve_tasks

# The paper's prompts (docs/method.md), written out independently of the registry.
AGE = "a photo of a {} person"
FER = {"angry": "a photo of an angry looking face", "disgust": "a photo of a disgusted looking face",
       "fear": "a photo of a fearful looking face", "happy": "a photo of a happy looking face",
       "sad": "a photo of a sad looking face", "surprise": "a photo of a surprised looking face",
       "neutral": "a photo of a neutral looking face", "contempt": "a photo of a contemptuous looking face"}
RACE = {"White": "a photo of a white person", "Black": "a photo of a black person",
        "Latino_Hispanic": "a photo of a latino hispanic person", "East Asian": "a photo of an east asian person",
        "Southeast Asian": "a photo of a southeast asian person", "Indian": "a photo of an indian person",
        "Middle Eastern": "a photo of a middle eastern person"}
EMOTION = {"Happiness": "happiness", "Fear": "fear", "Doubt/Confusion": "doubt or confusion",
           "Anticipation": "anticipation"}
PROMPT = {
    "stanford40": lambda k: f"a photo of a person {k.replace('_', ' ')}",
    "stanford40-crop": lambda k: f"a photo of a person {k.replace('_', ' ')}",
    "kinetics400": lambda k: f"a photo of a person {k}",
    "emotic-age": AGE.format, "lagenda-body": AGE.format, "lagenda-face": AGE.format, "utkface": AGE.format,
    "emotic-emotion": lambda k: f"a photo of a person who is feeling {EMOTION[k]}",
    "fer2013": FER.__getitem__, "ferplus": FER.__getitem__, "fairface-race": RACE.__getitem__,
    "fairface-age": lambda k: (f"a photo of a person who is {k.replace('-', ' to ')} years old"
                               if k[0].isdigit() else f"a photo of a person who is {k} years old"),
    "cub200": lambda k: f"a photo of a {k}, a type of bird.",
    "cub200-unseen": lambda k: f"a photo of a {k}, a type of bird.",
    "synth-activity": lambda k: f"a photo of a person {k}", "synth-age": AGE.format,
    "synth-expression": lambda k: f"a photo of a person who is feeling {k}",
}


def text_vec(s: str, dim: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(hashlib.sha256(s.encode()).hexdigest()[:12], 16))
    return torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0)


class OracleTokenizer:
    """Maps each distinct string to an id; the oracle reads the strings back."""

    def __init__(self):
        self.strings: list[str] = []

    def __call__(self, texts):
        ids = []
        for t in texts:
            if t not in self.strings:
                self.strings.append(t)
            ids.append(self.strings.index(t))
        return {"input_ids": torch.tensor(ids)[:, None], "attention_mask": torch.ones(len(ids), 1, dtype=torch.long)}


class Oracle(torch.nn.Module):
    """Image embedding = text embedding of the prompt its grey level stands for (``level_to_prompt``)."""

    def __init__(self, tokenizer: OracleTokenizer, level_to_prompt: dict[int, str]):
        super().__init__()
        self.tok, self.map = tokenizer, level_to_prompt
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.image_calls = self.text_calls = self.images_seen = 0

    def encode_text(self, tokens, normalize=True):
        self.text_calls += 1
        return torch.stack([text_vec(self.tok.strings[int(i)]) for i in tokens["input_ids"][:, 0]])

    def encode_image(self, images, normalize=True):
        self.image_calls += 1
        self.images_seen += len(images)
        assert not self.training, "evaluation must run in eval mode"
        assert not torch.is_grad_enabled(), "evaluation must run without autograd"
        out = []
        for img in images:
            level = float(img[0].median()) * 255
            near = min(self.map, key=lambda lv: abs(lv - level))
            out.append(text_vec(self.map[near] if abs(near - level) < 12 else "<background>"))
        return torch.stack(out)


def to_tensor(im: Image.Image) -> torch.Tensor:
    arr = np.asarray(im.resize((16, 16), Image.NEAREST), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def oracle_for(task: str, truth: dict, shuffle: bool = False) -> tuple[Oracle, OracleTokenizer]:
    levels = sorted(truth[task])
    keys = [truth[task][lv] for lv in levels]
    if shuffle:  # each level points at the next class's prompt: what a misaligned class list does
        keys = keys[1:] + keys[:1]
    tok = OracleTokenizer()
    return Oracle(tok, {lv: PROMPT[task](k) for lv, k in zip(levels, keys)}), tok


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    base = tmp_path_factory.mktemp("zs")
    return base, write_all(base)


ALL_TASKS = list(load_registry())


def test_every_registered_task_has_a_fixture():
    assert {t.dataset for t in load_registry().values()} <= set(WRITERS)
    assert set(PROMPT) == set(ALL_TASKS)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_oracle_scores_100_percent(fixtures, task):
    base, truth = fixtures
    model, tok = oracle_for(task, truth)
    model.train()
    data = evaluate(model, tok, to_tensor, resolve_tasks(task), base, batch_size=3, workers=0, device="cpu")
    (entry,) = data["results"].values()
    assert model.training, "the caller's train mode is restored after evaluation"
    assert entry["n"] > 0 and model.images_seen == entry["n"]
    assert entry["metrics"]["top1"] == 100.0
    assert entry["metrics"]["acc"] == 100.0
    if not entry["multilabel"]:  # multi-label: a person's other categories cannot all be the top-1
        assert entry["metrics"]["mean_per_class_recall"] == 100.0


@pytest.mark.parametrize("task", ALL_TASKS)
def test_shuffled_oracle_does_not(fixtures, task):
    base, truth = fixtures
    model, tok = oracle_for(task, truth, shuffle=True)
    (entry,) = evaluate(model, tok, to_tensor, resolve_tasks(task), base, batch_size=4, workers=0,
                        device="cpu")["results"].values()
    assert entry["metrics"]["top1"] < 100.0


def test_worker_processes_give_the_same_answers(fixtures):
    base, truth = fixtures
    model, tok = oracle_for("fer2013", truth)
    (entry,) = evaluate(model, tok, to_tensor, resolve_tasks("fer2013"), base, batch_size=5, workers=2,
                        device="cpu")["results"].values()
    assert entry["metrics"]["top1"] == 100.0 and entry["n"] == 14


# ------------------------------------------------------------------------------------- metrics
def test_metrics_match_hand_computation():
    topk = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [0, 2, 1], [1, 2, 0]])
    labels = [(0,), (0,), (2,), (1,), (2,)]
    m = task_metrics(topk, labels, num_classes=3, k=2)
    assert m["top1"] == pytest.approx(40.0)  # samples 0 and 2
    assert m["top2"] == pytest.approx(80.0) and m["acc"] == m["top2"]  # + samples 1 and 4
    assert m["top3"] == pytest.approx(100.0)
    # recall: class 0: 1/2, class 1: 0/1, class 2: 1/2 -> mean 1/3
    assert m["mean_per_class_recall"] == pytest.approx(100 / 3)
    np.testing.assert_array_equal(confusion_matrix(topk[:, 0], labels, 3), [[1, 1, 0], [1, 0, 0], [0, 1, 1]])


def test_multilabel_hit_when_any_true_label_in_top_k():
    topk = np.array([[3, 1, 0], [2, 0, 1]])
    labels = [(1, 4), (3,)]
    m = task_metrics(topk, labels, num_classes=5, k=3)
    assert m["top1"] == 0.0 and m["acc"] == pytest.approx(50.0)
    r = per_class_recall(topk[:, 0], labels, 5)
    assert np.isnan(r[0]) and r[1] == 0.0


def test_headline_reproduces_the_papers_numbers_and_reports_missing():
    spec, reg = headline_spec(), load_registry()
    for column, published in (("clip", 25.04), ("focusclip", 33.65)):
        scores = {t.name: t.paper[column] for t in reg.values() if column in t.paper}
        h = headline(scores, spec["groups"])
        assert round(h["headline"], 2) == published and h["complete"]
    h = headline({"stanford40": 10.0, "fer2013": 60.0, "utkface": 30.0}, spec["groups"])
    assert h["headline"] == pytest.approx((10 + 30 + 60) / 3)
    assert set(h["missing"]) == {"emotic-age", "lagenda-body", "lagenda-face", "emotic-emotion"}
    assert not h["complete"]


def test_prompt_articles_and_template_errors():
    assert fill_template("a photo of {a/an} {c} looking face", "angry") == "a photo of an angry looking face"
    assert fill_template("a photo of {a/an} {c} looking face", "sad") == "a photo of a sad looking face"
    with pytest.raises(ValueError, match="no {c}"):
        fill_template("a photo of a person", "x")


# ------------------------------------------------------------------------------- task selection
def test_unknown_task_fails_with_the_known_names():
    with pytest.raises(ValueError) as e:
        resolve_tasks("paper,fer2103")
    assert "Did you mean 'fer2013'" in str(e.value)
    assert "fer2013" in str(e.value) and "stanford40" in str(e.value) and "paper" in str(e.value)


def test_sets_and_user_task_file(tmp_path):
    assert [t.name for t in resolve_tasks("synthetic")] == ["synth-activity", "synth-age", "synth-expression"]
    assert len(resolve_tasks("paper")) == 10 and len(resolve_tasks("all")) == len(load_registry())
    write_fer2013(tmp_path / "fer2013")
    user = tmp_path / "my_tasks.json"
    user.write_text(json.dumps([{"name": "my-fer", "dataset": "fer2013", "split": "PrivateTest",
                                 "classes": ["happy", "sad", "angry", "disgust", "fear", "surprise", "neutral"],
                                 "templates": ["a face that looks {c}", "{c}"], "k": 2}]))
    (task,) = resolve_tasks(str(user))
    assert task.prompts(["happy"]) == [["a face that looks happy", "happy"]]
    truth = {"my-fer": {lv: k for lv, k in zip((40, 65, 90, 115, 140, 165, 190),
                                                ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])}}
    tok = OracleTokenizer()
    model = Oracle(tok, {lv: f"a face that looks {k}" for lv, k in truth["my-fer"].items()})
    (entry,) = evaluate(model, tok, to_tensor, [task], tmp_path, workers=0, device="cpu")["results"].values()
    assert entry["n"] == 7 and entry["metrics"]["top1"] == 100.0  # 2-template average still finds the class
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "x", "dataset": "fer2013", "templates": ["no placeholder"]}]))
    with pytest.raises(ValueError, match=r"bad\.json: task 0"):
        resolve_tasks(str(bad))


# ----------------------------------------------------------------------------- results file
def test_results_file_is_extended_not_recomputed(tmp_path):
    write_fer2013(tmp_path / "fer2013")
    write_utkface(tmp_path / "utkface")
    write_synthetic(tmp_path / "synthetic")
    out = tmp_path / "res" / "results.json"
    tok = OracleTokenizer()
    model = Oracle(tok, {40: "a photo of an angry looking face"})
    evaluate(model, tok, to_tensor, resolve_tasks("fer2013,utkface"), tmp_path, workers=0, device="cpu", out=out)
    calls = (model.image_calls, model.text_calls)
    assert calls[0] > 0
    first = json.loads(out.read_text())
    fp = model_fingerprint(model)
    assert set(first["results"]) == {f"fer2013@{fp}", f"utkface@{fp}"}
    assert (out.parent / first["results"][f"fer2013@{fp}"]["confusion_png"]).exists()
    evaluate(model, tok, to_tensor, resolve_tasks("fer2013,utkface"), tmp_path, workers=0, device="cpu", out=out)
    assert (model.image_calls, model.text_calls) == calls  # nothing recomputed
    assert json.loads(out.read_text())["results"] == first["results"]
    evaluate(model, tok, to_tensor, resolve_tasks("fer2013,synth-age"), tmp_path, workers=0, device="cpu", out=out)
    assert model.images_seen == first["results"][f"fer2013@{fp}"]["n"] + 10 + 5  # only synth-age added
    assert len(json.loads(out.read_text())["results"]) == 3
    evaluate(model, tok, to_tensor, resolve_tasks("fer2013"), tmp_path, workers=0, device="cpu", out=out, force=True)
    assert model.images_seen == 14 + 10 + 5 + 14
    evaluate(model, tok, to_tensor, resolve_tasks("fer2013"), tmp_path, workers=0, device="cpu", out=out, limit=5)
    assert model.images_seen == 14 + 10 + 5 + 14 + 5  # a different limit is a different result


def test_absent_dataset_is_skipped_with_one_log_line(tmp_path, caplog):
    write_fer2013(tmp_path / "fer2013")
    tok = OracleTokenizer()
    model = Oracle(tok, {40: "x"})
    with caplog.at_level(logging.INFO, logger="focusclip.zeroshot"):
        data = evaluate(model, tok, to_tensor, resolve_tasks("fer2013,utkface"), str(tmp_path / "{dataset}"),
                        workers=0, device="cpu")
    assert data["skipped_tasks"] == ["utkface"]
    lines = [r.getMessage() for r in caplog.records if "utkface" in r.getMessage()]
    assert len(lines) == 1 and "skipped" in lines[0] and str(tmp_path / "utkface") in lines[0]
    assert "utkface" in data["headline"][model_fingerprint(model)]["missing"]


# ------------------------------------------------------------------------- tiny model + CLI
@pytest.mark.slow
def test_tiny_model_and_cli_on_every_fixture(fixtures, tmp_path, capsys):
    import focusclip
    from focusclip.cli import main

    base, _ = fixtures
    model, _, eval_tf = focusclip.create_model_and_transforms("clip-tiny")
    focusclip.save_model(model, tmp_path / "tiny", tokenizer=focusclip.get_tokenizer("clip-tiny"))
    out = tmp_path / "eval" / "results.json"
    rc = main(["eval", "--model", str(tmp_path / "tiny"), "--tasks", "all", "--data-root", str(base / "{dataset}"),
               "--out", str(out), "--batch-size", "4", "--workers", "0", "--device", "cpu"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert {e["task"] for e in data["results"].values()} == set(ALL_TASKS)
    for e in data["results"].values():
        assert 0.0 <= e["metrics"]["top1"] <= e["metrics"]["acc"] <= 100.0
        assert (out.parent / e["confusion_png"]).exists()
    (fp,) = data["headline"]
    assert data["headline"][fp]["complete"] and data["headline"][fp]["headline"] is not None
    md = out.with_suffix(".md").read_text()
    assert "| stanford40 |" in md and "10.47" in md and "**headline**" in md and "33.65" in md
    # the library on the same model gives the same numbers as the CLI
    lib = evaluate(focusclip.load_model(tmp_path / "tiny"), focusclip.get_tokenizer(tmp_path / "tiny"), eval_tf,
                   resolve_tasks("fer2013"), base, workers=0, device="cpu")
    (entry,) = lib["results"].values()
    assert entry["metrics"] == data["results"][f"fer2013@{fp}"]["metrics"]
    # a misspelt task: a usage error (exit code 2) with the known names, before any model is loaded
    capsys.readouterr()
    assert main(["eval", "--model", "nowhere", "--tasks", "fer2103", "--data-root", str(base)]) == 2
    assert "fer2013" in capsys.readouterr().err


def test_prompt_ensemble_averages_the_extra_templates(fixtures):
    base, truth = fixtures
    model, tok = oracle_for("fer2013", truth)
    (entry,) = evaluate(model, tok, to_tensor, resolve_tasks("fer2013"), base, workers=0, device="cpu",
                        ensemble=True)["results"].values()
    assert entry["ensemble"] and len(entry["prompts"]) == 3
    assert entry["prompts"][0] == "a photo of an angry looking face"
    assert "a photo of an angry face." in tok.strings  # the ensemble templates were encoded too
    assert entry["metrics"]["top1"] == 100.0


def test_k_above_five_is_evaluated(tmp_path):
    """A user task may ask for any k: acc@7 over 7 classes is 100% whatever the model."""
    write_fer2013(tmp_path / "fer2013")
    user = tmp_path / "k7.json"
    user.write_text(json.dumps([{"name": "fer-k7", "dataset": "fer2013", "split": "PrivateTest",
                                 "classes": ["happy", "sad", "angry", "disgust", "fear", "surprise", "neutral"],
                                 "templates": ["{c}"], "k": 7}]))
    (task,) = resolve_tasks(str(user))
    tok = OracleTokenizer()
    model = Oracle(tok, {0: "unrelated"})
    data = evaluate(model, tok, to_tensor, [task], tmp_path, workers=0, device="cpu")
    (entry,) = data["results"].values()
    assert entry["metrics"]["acc"] == 100.0 and entry["metrics"]["top7"] == 100.0
    assert next(iter(data["results"])).endswith("@" + data["model"])


def test_classifier_averages_the_normalised_prompt_embeddings():
    from focusclip.zeroshot.classifier import build_zero_shot_classifier

    vectors = {"a0": torch.tensor([3.0, 0.0, 0.0]), "a1": torch.tensor([0.0, 2.0, 0.0]),
               "b0": torch.tensor([0.0, 0.0, 5.0])}

    class Fixed(torch.nn.Module):
        def encode_text(self, texts, normalize=True):
            v = torch.stack([vectors[t] for t in texts])
            return torch.nn.functional.normalize(v, dim=-1) if normalize else v

    emb = build_zero_shot_classifier(Fixed(), lambda texts: texts, [["a0", "a1"], ["b0"]], torch.device("cpu"))
    torch.testing.assert_close(emb, torch.tensor([[2 ** -0.5, 2 ** -0.5, 0.0], [0.0, 0.0, 1.0]]))


def test_image_cache_decodes_each_image_once_and_changes_no_result(tmp_path, monkeypatch):
    import focusclip
    from focusclip.zeroshot import image_cache as ic
    from focusclip.zeroshot.image_cache import EvalImageCache

    write_synthetic(tmp_path / "synthetic")
    model, _, eval_tf = focusclip.create_model_and_transforms("clip-tiny")
    tok = focusclip.get_tokenizer("clip-tiny")
    tasks = resolve_tasks(["synth-activity", "synth-age", "synth-expression"])  # the same images
    plain = evaluate(model, tok, lambda im: eval_tf(im), tasks, tmp_path, workers=0, device="cpu")  # no cache
    opened = []
    real_open = ic.open_sample
    monkeypatch.setattr(ic, "open_sample", lambda s: opened.append(s.id) or real_open(s))
    encoded = []
    real_encode = model.encode_image
    monkeypatch.setattr(model, "encode_image", lambda x, **kw: encoded.append(len(x)) or real_encode(x, **kw))
    cache = EvalImageCache()
    first = evaluate(model, tok, eval_tf, tasks, tmp_path, workers=0, device="cpu", image_cache=cache,
                     batch_size=3)
    n = len(set(opened))
    assert n > 0 and len(opened) == n == len(cache) == cache.misses  # one decode per image for three tasks
    assert sum(encoded) == n  # ... and one forward pass per image: the tasks share the features
    again = evaluate(model, tok, focusclip.eval_transform(model), tasks, tmp_path, workers=0, device="cpu",
                     image_cache=cache)  # another call, an equal transform: nothing decoded
    assert len(opened) == n and cache.hits == n and sum(encoded) == 2 * n
    for res in (first, again):
        assert {k: e["metrics"] for k, e in res["results"].items()} == \
               {k: e["metrics"] for k, e in plain["results"].items()}
    small = EvalImageCache(max_bytes=int(cache.nbytes // n) * 2)  # room for two images: only two kept
    capped = evaluate(model, tok, eval_tf, tasks[:2], tmp_path, workers=0, device="cpu", image_cache=small)
    assert len(small) == 2 and small.misses == n
    assert [e["metrics"] for e in capped["results"].values()] == [e["metrics"] for e in plain["results"].values()][:2]
