"""One partition of a build, start to finish: the same code on every engine (here, a process pool or a
Ray actor on another node).

Photos -> people (:func:`focusclip.detect.run.detect_images`) -> texts
(:func:`focusclip.describe.run.describe_records`) -> one WebDataset shard. Work in progress lives in
``DIR/work/part-K/`` and is appended as it is done (the detectors' records, the describers' results), so a
partition killed half way resumes where it stopped and pays for no LLM request twice. Its outputs appear
by atomic renames, the marker ``DIR/done/part-K.json`` last: a partition is finished exactly when its
marker exists, and a partition without one is redone from its work folder.

Outputs of partition ``K`` (photos at positions ``first .. first + n - 1`` of ``photos.txt``):

* ``shards/shard-K.tar``: one sample per photo with at least one person, keyed by the photo's position
  (the image bytes as they are, the record as ``.json``, its text as ``.txt``: what ``data shards`` writes);
* ``records/part-K.jsonl``: those records with their ``captions`` (image paths relative to ``records/``);
* ``descriptions/part-K.jsonl``: the describer's result lines (backend, model, usage; provenance);
* ``errors/part-K.jsonl``: photos that could not be read or detected (never fatal, counted);
* ``done/part-K.json``: the partition's counts and shard entry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from focusclip.data.records import Record, record_id, resolve_image, write_records
from focusclip.data.shards import shard_name, write_shard_file
from focusclip.describe.backend import Describer
from focusclip.describe.results import read_descriptions
from focusclip.describe.run import describe_records
from focusclip.detect.base import Detector
from focusclip.detect.run import detect_images, errors_path
from focusclip.io import atomic_open, atomic_write_json, read_jsonl
from focusclip.pipeline.plan import TAR_MEMBER, Partition

logger = logging.getLogger(__name__)

SUBFOLDERS = ("shards", "records", "descriptions", "errors", "done", "work", "photos")
QUIET = math.inf  # the inner jobs' own progress lines: the build reports per partition


#: describer options that decide the texts (recorded in a build's plan; a change needs a new build)
TEXT_SETTINGS = ("seed", "attributes", "model", "base_url", "temperature", "max_tokens", "frequency_penalty")


@dataclass(frozen=True)
class DescriberSpec:
    """How each worker makes its describer: ``backend`` and the keyword arguments of
    :func:`focusclip.describe.create_describer`. The API key is read by each worker from the environment
    variable named by ``api_key_env``; it is never part of the spec, the plan or any file."""

    backend: str = "rules"
    options: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """What decides the texts (recorded in the plan)."""
        keys = ("seed", "attributes") if self.backend == "rules" else TEXT_SETTINGS[2:]
        return {"backend": self.backend, **{k: self.options[k] for k in keys if k in self.options}}

    def create(self) -> Describer:
        from focusclip.describe import create_describer

        return create_describer(self.backend, **self.options)


@dataclass(frozen=True)
class BuildSpec:
    """Everything a worker needs, picklable and free of secrets."""

    out: str
    detector: str = "mediapipe"
    detector_options: dict[str, Any] = field(default_factory=dict)
    describer: DescriberSpec = field(default_factory=DescriberSpec)
    concurrency: int = 1  #: description requests in flight per worker (the cluster-wide limit is separate)

    def create_detector(self) -> Detector:
        from focusclip.detect import create_detector

        return create_detector(self.detector, **self.detector_options)


@dataclass(kw_only=True)
class BuildCounts:
    """The counts a partition reports (:class:`PartitionResult`) and a build adds up over its finished
    partitions (:class:`focusclip.pipeline.BuildSummary`), with a few unreadable photos as examples."""

    photos: int = 0
    samples: int = 0
    people: int = 0
    bad_photos: int = 0
    no_person: int = 0
    bad_examples: list[str] = field(default_factory=list)

    def add_counts(self, other: BuildCounts, examples: int = 5) -> None:
        """Add ``other``'s counts; keep at most ``examples`` example photos."""
        for name in ("photos", "samples", "people", "bad_photos", "no_person"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.bad_examples += other.bad_examples[: max(0, examples - len(self.bad_examples))]


@dataclass
class PartitionResult(BuildCounts):
    """What one partition did. ``finished``: its outputs and marker are written; otherwise
    ``failed_descriptions`` records still have no text (a rerun retries them)."""

    index: int
    failed_descriptions: int = 0
    finished: bool = False
    shard: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PartitionResult:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def part_name(index: int) -> str:
    return f"part-{index:06d}"


def marker_path(out: Path, index: int) -> Path:
    return out / "done" / f"{part_name(index)}.json"


def read_marker(out: Path, index: int) -> PartitionResult | None:
    path = marker_path(out, index)
    if not path.is_file():
        return None
    return PartitionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _materialise(source: str, folder: Path) -> Path:
    """A photo as a file: the path itself, or a tar member extracted (atomically) under ``folder``."""
    if TAR_MEMBER not in source:
        return Path(source)
    tar_path, member = source.split(TAR_MEMBER, 1)
    target = folder / Path(tar_path).stem / member
    if not target.is_file():
        with tarfile.open(tar_path) as tar:
            data = tar.extractfile(member)
            if data is None:
                raise OSError(f"{source}: not a file in the tar")
            with atomic_open(target, "wb") as f:
                shutil.copyfileobj(data, f)
    return target


def _photo_files(part: Partition, out: Path) -> tuple[list[Path], dict[str, str]]:
    """The partition's photos as files, and the error of each photo that could not be had."""
    files, errors = [], {}
    for source in part.photos:
        try:
            files.append(_materialise(source, out / "photos" / part_name(part.index)))
        except (OSError, tarfile.TarError) as e:
            errors[source] = f"{type(e).__name__}: {e}"
    return files, errors


def _detected(work: Path, files: list[Path]) -> tuple[dict[Path, Record], dict[Path, str]]:
    """Records (by resolved photo path) and the last error of each photo that has no record."""
    records = {resolve_image(r, work).resolve(): r for r in read_jsonl(work / "detected.jsonl")}
    errors = {resolve_image(e, work).resolve(): e.get("error", "")
              for e in read_jsonl(errors_path(work / "detected.jsonl"))}
    return records, {p: e for p, e in errors.items() if p not in records}


def build_partition(spec: BuildSpec, part: Partition, detector: Detector, describer: Describer) -> PartitionResult:
    """Build partition ``part`` of ``spec.out`` (module docstring); resumes its own work folder."""
    out = Path(spec.out)
    work = out / "work" / part_name(part.index)
    work.mkdir(parents=True, exist_ok=True)
    result = PartitionResult(part.index, photos=len(part.photos))
    files, missing = _photo_files(part, out)
    if files:
        detect_images(files, work / "detected.jsonl", detector, progress_every=QUIET)
    records, failed = _detected(work, files)
    bad = [(s, e) for s, e in missing.items()] + [(str(p), e) for p, e in failed.items()]
    kept: list[tuple[int, Record]] = []
    for position, path in zip(_positions(part, missing), files):
        record = records.get(path.resolve())
        if record is None:
            continue
        if not record.get("people"):
            result.no_person += 1
            continue
        kept.append((position, record))
    summary = describe_records([r for _, r in kept], work / "descriptions.jsonl", describer,
                               workers=spec.concurrency, progress_every=QUIET,
                               fsync=describer.name != "rules")
    successes, _ = read_descriptions(work / "descriptions.jsonl")
    result.failed_descriptions = sum(record_id(r) not in successes for _, r in kept)
    result.bad_photos, result.bad_examples = len(bad), [s for s, _ in bad[:5]]
    if result.failed_descriptions:
        logger.warning("%s: %d records have no description yet (%d failed in this run); rerun to retry them",
                       part_name(part.index), result.failed_descriptions, summary.failed)
        return result
    final = [(pos, _captioned(r, successes[record_id(r)]["description"], work, out / "records")) for pos, r in kept]
    result.samples = len(final)
    result.people = sum(len(r["people"]) for _, r in final)
    _publish(out, part, final, bad, result)
    return result


def _positions(part: Partition, missing: dict[str, str]) -> list[int]:
    """The global positions of the partition's photos that exist as files (in ``files`` order)."""
    return [part.first + i for i, s in enumerate(part.photos) if s not in missing]


def _captioned(record: Record, description: str, work: Path, records_dir: Path) -> Record:
    """The record as ``describe --records-out`` writes it: captions replaced by the description, a relative
    image path rebased from the work folder to the records folder."""
    image = record["image"]
    if not Path(image).is_absolute():
        image = Path(os.path.relpath((work / image).resolve(), records_dir.resolve())).as_posix()
    return {**record, "image": image, "captions": [description]}


def _publish(out: Path, part: Partition, final: list[tuple[int, Record]], bad: list[tuple[str, str]],
             result: PartitionResult) -> None:
    """The partition's outputs by atomic renames, its marker last; then its work folder goes."""
    name = part_name(part.index)
    if final:
        shard = out / "shards" / shard_name(part.index)
        size = write_shard_file(shard, [(r, out / "records", pos) for pos, r in final])
        result.shard = {"file": shard.name, "samples": len(final), "bytes": size}
    write_records(out / "records" / f"{name}.jsonl", [r for _, r in final])
    with atomic_open(out / "errors" / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for source, error in bad:
            f.write(json.dumps({"photo": source, "error": error}, ensure_ascii=False) + "\n")
    result.finished = True
    atomic_write_json(marker_path(out, part.index), result.to_dict())
    finish_cleanup(out, part.index)


def finish_cleanup(out: Path, index: int) -> None:
    """After the marker: keep the describer's results under ``descriptions/`` and drop the work folder
    (also done at the start of a rerun for a partition killed between the two)."""
    work = out / "work" / part_name(index)
    if not work.is_dir():
        return
    results = work / "descriptions.jsonl"
    if results.is_file():
        (out / "descriptions").mkdir(parents=True, exist_ok=True)
        os.replace(results, out / "descriptions" / f"{part_name(index)}.jsonl")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(work)
