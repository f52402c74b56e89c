"""Small file helpers shared across the library: atomic writes and append-and-flush JSONL."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open ``path.tmp`` for writing and rename it over ``path`` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_save(path: str | os.PathLike, writer: Callable[[str], None]) -> None:
    """Atomically produce ``path`` with a library writer that takes a filename (torch.save, savefig...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        writer(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class JsonlAppender:
    """Append one JSON object per line, flushed and fsynced per record, so a kill loses nothing written.

    On open, a trailing partial line left by an earlier crash is cut off, so the file stays valid JSONL.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_partial_last_line(self.path)
        self._f = self.path.open("a", encoding="utf-8")
        self._fsync = fsync

    def write(self, obj: Any) -> None:
        self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` with an error that names ``where`` and the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A UTF-8 text file; clear errors for a missing file, a folder or bytes that are not UTF-8."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder; expected a {what}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); expected a {what}") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Parse a JSON file; every failure is one clear error naming the file (and line for bad JSON)."""
    return parse_json(read_text(path, what), str(path))


def iter_jsonl_lines(path: str | os.PathLike, error: type[Exception] = ValueError) -> Iterator[tuple[str, Any]]:
    """``("<path>:<line>", parsed JSON value)`` for each non-blank line of a JSONL file, streamed.

    A line that is not valid JSON (or not UTF-8) yields an ``error`` naming the file, line and column in
    place of the value, so callers choose whether to raise it or collect it and go on.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected a JSONL file")
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"JSONL file not found: {path}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                yield where, error(f"{where}: not UTF-8 text (byte {e.start} of the line)")
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                value = error(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
            yield where, value


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """The values of a JSONL file written by :class:`JsonlAppender` (empty when the file does not exist).

    A torn last line (no newline at its end and not valid JSON: a writer was killed mid-line) is
    ignored; a bad line anywhere else is an error naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = list(iter_jsonl_lines(path))
    torn_tail = bool(lines) and isinstance(lines[-1][1], ValueError) and not _ends_with_newline(path)
    out = []
    for i, (_, value) in enumerate(lines):
        if isinstance(value, ValueError):
            if torn_tail and i == len(lines) - 1:
                continue
            raise value
        out.append(value)
    return out


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _truncate_partial_last_line(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Any:
    """Open an image file in ``mode`` (fully loaded, file closed); a clear error names the file when it is
    missing or not an image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not an image file") from None
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def open_rgb(path: str | os.PathLike) -> Any:
    """:func:`open_image` in RGB."""
    return open_image(path, "RGB")


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of an image as displayed (EXIF orientations 5-8 swap them), read from its header
    without decoding; ``None`` when the file is missing or not an image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError):
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def open_image_reduced(path: str | os.PathLike, mode: str = "RGB", min_size: tuple[int, int] | None = None
                       ) -> tuple[Any, tuple[float, float]]:
    """Decode an image, letting JPEGs decode at a reduced scale (PIL draft mode) that is still at least
    ``min_size`` = (width, height); returns the image and the factor (fx, fy) from file to decoded pixels.

    Decoding a 1280x720 JPEG for a 224 px model this way is about twice as fast. Raises ``OSError`` or
    ``ValueError`` (PIL's errors) for unreadable files.
    """
    from PIL import Image

    with Image.open(path) as im:
        w0, h0 = im.size
        if min_size is not None and im.format == "JPEG":
            im.draft(mode if mode in ("RGB", "L") else "RGB", (int(min_size[0]), int(min_size[1])))
        im.load()
        out = im.convert(mode)
    return out, (out.size[0] / w0, out.size[1] / h0)
