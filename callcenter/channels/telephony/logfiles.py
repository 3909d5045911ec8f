"""Log files Asterisk appends to (queue_log, the CDR file), read on from a checkpoint that
survives restarts: the file's inode and the offset after the last whole record read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from callcenter.config import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    inode: int
    offset: int


class CheckpointedFile:
    """One Asterisk log file and the checkpoint of what was read of it."""

    def __init__(self, path: Path, checkpoint: Path) -> None:
        self.path = path
        self.checkpoint_path = checkpoint

    def _checkpoint(self) -> Checkpoint | None:
        """The saved checkpoint; None before the first save, the file's start when damaged."""
        try:
            saved = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
            return Checkpoint(int(saved["inode"]), int(saved["offset"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.error("%s is damaged; reading %s from its start", self.checkpoint_path, self.path)
            return Checkpoint(0, 0)

    def save(self, checkpoint: Checkpoint) -> None:
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.checkpoint_path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({"inode": checkpoint.inode, "offset": checkpoint.offset}), encoding="utf-8"
        )
        temporary.replace(self.checkpoint_path)


def server_files(
    setting: str, pattern: str, server: str, data_dir: Path, stem: str
) -> tuple[Path, Path] | None:
    """The file of one AMI server (``server`` is its ami_servers name, empty for the only one)
    by the setting's ``pattern``, and where its checkpoint is kept; None when it is not set."""
    if not pattern:
        return None
    if server and "{server}" not in pattern:
        raise ConfigError(f"{setting}: with several ami_servers, name each file by {{server}}")
    suffix = f"-{server}" if server else ""
    return Path(pattern.replace("{server}", server)), data_dir / f"{stem}{suffix}.checkpoint"
