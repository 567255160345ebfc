"""Atomic writes: an interrupted job never leaves a half-written file under its final name.

Writers get a hidden temporary path next to the target (same directory, so the final
`os.replace` is a rename on one filesystem) and the file appears only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(path) -> Iterator[pathlib.Path]:
    """Yields a temp path beside `path`; on success it is renamed to `path`, on error deleted.

    The temp name is hidden (`.name.tmp-XXXX.suffix`) and keeps the suffix, so writers that
    pick a format from the extension (Pillow, imageio) still do the right thing.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files: give the result the usual umask mode
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def staged_dir(final_dir) -> Iterator[pathlib.Path]:
    """Yields a fresh hidden temp dir beside `final_dir`; on success its entries move into it.

    `final_dir` is created if needed; files with the same names are replaced and
    subdirectories are replaced whole. On error the temp dir is removed and nothing of the
    job appears in `final_dir`.
    """
    final_dir = pathlib.Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.partial-", dir=final_dir.parent))
    try:
        yield tmp
        final_dir.mkdir(parents=True, exist_ok=True)
        for entry in sorted(tmp.iterdir()):
            target = final_dir / entry.name
            if entry.is_dir() or (target.is_dir() and not target.is_symlink()):
                _remove(target)  # directories are replaced whole, never merged
            os.replace(entry, target)  # files: atomic replacement of any old one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
