"""An audit hook that records what the process writes, runs or connects to, switched on by `Guard`.

Used by the hostile-image suite (every scan) and by the unit test that scanning writes nothing.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FS_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.symlink", "os.link",
              "os.chmod", "os.chown", "os.utime", "os.mknod", "os.mkfifo", "shutil.copyfile", "shutil.move",
              "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp"}
_EXEC_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile",
                "ctypes.dlopen", "socket.connect", "socket.bind", "socket.getaddrinfo", "urllib.Request"}


class _Audit:
    active = False
    events: list[tuple[str, str]] = []


def _hook(event: str, args: tuple) -> None:
    if not _Audit.active:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes and not str(path).endswith(".pyc"):
            _Audit.events.append((event, str(path)))
    elif event in _FS_EVENTS or event in _EXEC_EVENTS:
        _Audit.events.append((event, str(args[0]) if args else ""))


sys.addaudithook(_hook)  # cannot be removed: it records only while a `Guard` switches it on


def listing(root: Path) -> dict[str, tuple[int, int]]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@dataclass
class Guard:
    """`with Guard([dirs]): ...`: fails if the block wrote a file, ran a program or opened a socket,
    or if anything under `roots` changed. `events` holds what was recorded."""

    roots: list[Path]
    events: list[tuple[str, str]] = field(default_factory=list)

    def __enter__(self) -> "Guard":
        self._before = [listing(r) for r in self.roots]
        _Audit.events = []
        _Audit.active = True
        return self

    def __exit__(self, *exc) -> None:
        _Audit.active = False
        self.events = list(_Audit.events)
        assert self.events == [], f"the scan wrote, ran or connected: {self.events[:5]}"
        for root, before in zip(self.roots, self._before):
            assert listing(root) == before, f"files changed under {root}"
