"""Writing a Minari dataset so that a process killed mid-way never leaves one that looks complete.

Minari writes a dataset in place (``$MINARI_DATASETS_PATH/<id>/data``) and lists every folder that has a
``data`` subfolder, finished or not. :class:`Staging` points Minari at a hidden folder beside the datasets
(``.offbench-staging-<pid>-*``: Minari skips hidden folders when it lists or loads) while it writes, and
moves the finished dataset into place with one rename on the same file system. A stage left by a killed
process is removed by :func:`remove_stale_stages` (its pid is gone).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

ENV = "MINARI_DATASETS_PATH"
STAGE_PREFIX = ".offbench-staging-"


def minari_root() -> Path:
    """Minari's datasets folder (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``), created."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path())


@contextlib.contextmanager
def minari_dir(path):
    """``$MINARI_DATASETS_PATH`` set to ``path`` inside the block (restored after; ``None``: unchanged)."""
    old = os.environ.get(ENV)
    if path is not None:
        os.environ[ENV] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


class Staging:
    """``with stage.active(): <Minari writes dataset_id>`` then ``stage.publish()``."""

    def __init__(self, dataset_id: str):
        self.dataset_id = dataset_id
        self.root = minari_root()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=self.root))

    @contextlib.contextmanager
    def active(self):
        """Minari's datasets folder is the stage inside the block; an exception discards the stage."""
        with minari_dir(self.dir):
            try:
                yield self
            except BaseException:
                self.discard()
                raise

    def publish(self) -> Path:
        """Move the written dataset into Minari's folder (replacing an older one of the same id)."""
        src, dst = self.dir / self.dataset_id, self.root / self.dataset_id
        if not (src / "data").is_dir():
            self.discard()
            raise FileNotFoundError(f"nothing was written for {self.dataset_id} in {self.dir}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        for parent in Path(self.dataset_id).parents:  # namespace metadata Minari wrote in the stage
            ns_file = self.dir / parent / "namespace_metadata.json"
            if str(parent) != "." and ns_file.exists() and not (self.root / parent / ns_file.name).exists():
                tmp = self.dir / f"{ns_file.name}.{parent.name}"
                shutil.copyfile(ns_file, tmp)
                os.replace(tmp, self.root / parent / ns_file.name)
        if dst.exists():  # a directory cannot be replaced by rename: move the old one into the stage first
            os.replace(dst, self.dir / ".replaced")
        os.replace(src, dst)
        self.discard()
        return dst

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def remove_stale_stages(root: Path | None = None) -> list[Path]:
    """Remove the stages of processes that no longer exist (killed builds or downloads); returns them."""
    root = Path(root) if root is not None else minari_root()
    removed = []
    for d in root.glob(f"{STAGE_PREFIX}*"):
        try:
            pid = int(d.name[len(STAGE_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if not _alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
