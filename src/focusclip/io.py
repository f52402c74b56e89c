"""File helpers shared across the library: atomic writes, append-and-flush JSONL, reading text, JSON and
JSONL with errors that name the file, and checks that a command never overwrites its inputs.

Images are opened by :mod:`focusclip.images`."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from focusclip.errors import InputError, MissingInput, OutputError, UsageError

PathLike = str | os.PathLike
logger = logging.getLogger(__name__)

#: first characters a spreadsheet reads as a formula (OWASP's CSV injection list)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string starting with a formula character gets a leading
    apostrophe (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``), as spreadsheets expect; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """:func:`csv_cell` on every value of a row."""
    return [csv_cell(v) for v in values]


def _finite(obj: Any, where: str, found: list[str]) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        found.append(where)
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, f"{where}.{k}", found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    return obj


def json_text(obj: Any, indent: int | None = None, where: str = "JSON output") -> str:
    """``json.dumps`` that never writes bare ``NaN`` / ``Infinity`` (invalid JSON that strict parsers
    refuse): a non-finite number is written as ``null``, with a warning naming ``where`` and its keys."""
    try:
        return json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    except ValueError:
        found: list[str] = []
        clean = _finite(obj, "$", found)
        logger.warning("%s: %d non-finite number(s) written as null (JSON has no NaN): %s", where, len(found),
                       ", ".join(found[:5]) + (", ..." if len(found) > 5 else ""))
        return json.dumps(clean, indent=indent, ensure_ascii=False, allow_nan=False)


def default_file_mode() -> int:
    """The mode a new file gets from ``open()`` under this process's umask (``0o666 & ~umask``)."""
    try:  # Linux states the umask without changing it
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(umask)
    return 0o666 & ~umask


def usual_modes(paths: Iterable[PathLike]) -> None:
    """:func:`default_file_mode` for files a library wrote in place (``save_pretrained`` writes its
    ``model.safetensors`` 0600)."""
    mode = default_file_mode()
    for p in paths:
        if Path(p).is_file():
            os.chmod(p, mode)


def _usual_mode(path: Path) -> None:
    """Give a file written by a library the permissions any new file gets (safetensors and other writers
    create theirs 0600 whatever the umask, so another user, a server, could not read a saved model)."""
    os.chmod(path, default_file_mode())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its file
    return True


def remove_stale_temps(folder: Path, prefix: str) -> int:
    """Remove ``folder/<prefix>.<pid>.tmp*`` files left by a writer that was killed outright (``kill -9``:
    no ``finally`` runs); a temp file of a live process is kept. Returns how many were removed."""
    removed = 0
    for f in folder.glob(f"{prefix}.*.tmp*"):
        pid = f.name[len(prefix) + 1:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            f.unlink(missing_ok=True)
            removed += 1
    if removed:
        logger.info("%s: removed %d temporary file(s) of an interrupted write", folder / prefix.lstrip("."), removed)
    return removed


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open ``.path.<pid>.tmp`` for writing and rename it over ``path`` only when the block succeeds (a temp
    file of an earlier writer of ``path`` that was killed is removed first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, f".{path.name}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _usual_mode(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    atomic_write_text(path, json_text(obj, indent=indent, where=str(path)) + "\n")


def atomic_save(path: str | os.PathLike, writer: Callable[[str], None]) -> None:
    """Atomically produce ``path`` with a library writer that takes a filename (torch.save, savefig...);
    the file gets the usual permissions (``0o666 & ~umask``), whatever mode the writer created it with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, f".{path.stem}")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        writer(str(tmp))
        _usual_mode(tmp)
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
        self._f.write(json_text(obj, where=str(self.path)) + "\n")
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
        raise InputError(f"{where}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A UTF-8 text file; clear errors for a missing file, a folder or bytes that are not UTF-8."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingInput(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; expected a {what}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}); expected a {what}") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Parse a JSON file; every failure is one clear error naming the file (and line for bad JSON)."""
    return parse_json(read_text(path, what), str(path))


def iter_jsonl_lines(path: str | os.PathLike, error: type[Exception] = InputError) -> Iterator[tuple[str, Any]]:
    """``("<path>:<line>", parsed JSON value)`` for each non-blank line of a JSONL file, streamed.

    A line that is not valid JSON (or not UTF-8) yields an ``error`` naming the file, line and column in
    place of the value, so callers choose whether to raise it or collect it and go on.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a JSONL file")
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise MissingInput(f"JSONL file not found: {path}") from None
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


# ------------------------------------------------------------------------------ output safety


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (through links and ``..``), existing or not."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def inside_folder(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` (existing or not) lies inside the existing folder ``folder`` (through links and ``..``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_not_inputs(outputs: dict[str, PathLike | None], inputs: dict[str, PathLike | None]) -> None:
    """:class:`OutputError` when an output (by option name) is one of the inputs or lies inside an input
    folder (a model directory, a dataset root): no command overwrites what it reads or writes into it."""
    for out_name, out in outputs.items():
        for in_name, inp in inputs.items():
            if out is None or inp is None:
                continue
            if same_file(out, inp):
                raise OutputError(f"{out_name} {out} is also the input {in_name}; refusing to overwrite an "
                                  f"input: choose another {out_name}")
            if inside_folder(out, inp):
                raise OutputError(f"{out_name} {out} is inside the input {in_name} {inp}; refusing to write "
                                  f"into an input: choose an {out_name} outside it")


def check_file_target(name: str, path: PathLike) -> None:
    """:class:`UsageError` when an output meant to be a file is an existing folder."""
    if Path(path).is_dir():
        raise UsageError(f"{name} {path} is a folder; expected a file name")


def check_dir_target(name: str, path: PathLike) -> None:
    """:class:`UsageError` when an output meant to be a folder is an existing file."""
    if Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"{name} {path} is a file; expected a folder")


def check_new_folder(name: str, path: PathLike, overwrite: bool, flag: str = "--overwrite") -> None:
    """:class:`UsageError` when ``path`` is a file; :class:`OutputError` when it is a folder that already
    holds files, unless ``overwrite``: a command that writes a whole folder (a model) starts from an empty one."""
    check_dir_target(name, path)
    if overwrite or not Path(path).is_dir():
        return
    held = sorted(p.name for p in Path(path).iterdir())
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise OutputError(f"{name} {path} already holds files ({shown}); pass {flag} to write into it, "
                          "or choose another folder")


def check_no_overwrite(paths: Iterable[PathLike], overwrite: bool, flag: str = "--overwrite") -> None:
    """:class:`OutputError` for the first of ``paths`` that exists, unless ``overwrite``: a command does not
    replace files it may not have written."""
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise OutputError(f"{path} already exists; pass {flag} to replace it, or choose another path")
