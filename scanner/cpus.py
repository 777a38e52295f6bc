"""The cores this process may use: the default number of layer workers ("one per core").

`os.cpu_count()` counts the machine's cores. A CI job in a container limited to a few of them
(`docker run --cpus 2`, a Kubernetes CPU limit: a cgroup CPU quota) or pinned to some (`taskset`:
the CPU affinity) would start one worker per core of the host: the memory of each, and time lost
to the quota's throttling. Here the count is the smallest of the affinity and the quota of the
process's cgroup and of each cgroup above it (v2 `cpu.max`; v1 `cpu.cfs_quota_us` over
`cpu.cfs_period_us`), rounded up: 1.5 CPUs allowed make 2 workers.

(`dask.system.cpu_count` does the same, but Dask is an optional dependency and its import alone
takes 80 ms of every start.)
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator, Optional

V1_CONTROLLERS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def available_cpus(cgroup_root: str = "/sys/fs/cgroup", self_cgroup: str = "/proc/self/cgroup") -> int:
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpus(Path(cgroup_root), Path(self_cgroup))
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpus(root: Path, self_cgroup: Path) -> Optional[float]:
    """CPUs the cgroup quotas allow this process (the smallest on its path); None: no quota."""
    return min(_quotas(root, self_cgroup), default=None)


def _quotas(root: Path, self_cgroup: Path) -> Iterator[float]:
    """The quota (in CPUs) of every cgroup on this process's path that has one."""
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    paths = {"": "/"}  # controllers -> the path of this process's cgroup ("" is v2's)
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        paths[controllers] = path or "/"
    # v2: cpu.max ("max 100000": no quota) in the unified hierarchy (or its `unified` mount)
    for base in (root, root / "unified"):
        for group in _up(base, paths[""]):
            text = _read(group / "cpu.max")
            if text is not None:
                quota, _, period = text.partition(" ")
                yield from _ratio(quota, period)
    # v1: the cpu controller's mount (a container sees its own cgroup at the mount's root)
    for controllers, path in paths.items():
        if "cpu" not in controllers.split(","):
            continue
        for mount in V1_CONTROLLERS:
            for group in _up(root / mount, path):
                yield from _ratio(_read(group / "cpu.cfs_quota_us"), _read(group / "cpu.cfs_period_us"))


def _up(base: Path, path: str) -> Iterator[Path]:
    """The cgroup at `path` under `base` and every one above it, up to `base`."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    for n in range(len(parts), -1, -1):
        yield base.joinpath(*parts[:n])


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _ratio(quota: Optional[str], period: Optional[str]) -> Iterator[float]:
    """quota/period; nothing where there is no quota ("max", -1, absent or unreadable)."""
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return
    if q > 0 and p > 0:
        yield q / p
