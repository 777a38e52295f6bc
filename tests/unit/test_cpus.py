"""The default number of workers: the cores this process may use (affinity, cgroup quotas)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.cpus import available_cpus, cgroup_cpus

REPO = Path(__file__).resolve().parents[2]


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("self_cgroup,files,cpus", [
    # cgroup v2: the process's own group, a group above it with a lower quota, "max" (none)
    ("0::/ci/job\n", {"fs/ci/job/cpu.max": "150000 100000\n"}, 1.5),
    ("0::/ci/job\n", {"fs/ci/job/cpu.max": "max 100000\n", "fs/ci/cpu.max": "200000 100000\n"}, 2.0),
    ("0::/ci/job\n", {"fs/ci/job/cpu.max": "400000 100000\n", "fs/cpu.max": "100000 100000\n"}, 1.0),
    ("0::/\n", {"fs/cpu.max": "max 100000\n"}, None),
    # v2 in a hybrid layout (the unified hierarchy mounted under unified/)
    ("0::/user.slice\n", {"fs/unified/user.slice/cpu.max": "50000 100000\n"}, 0.5),
    # cgroup v1: a container sees its own group at the mount's root, whatever /proc/self/cgroup says
    ("4:cpu,cpuacct:/docker/abc\n", {"fs/cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
                                      "fs/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 3.0),
    ("4:cpu:/batch\n", {"fs/cpu/batch/cpu.cfs_quota_us": "-1\n", "fs/cpu/batch/cpu.cfs_period_us": "100000\n",
                        "fs/cpu/cpu.cfs_quota_us": "-1\n"}, None),
    ("4:cpuacct:/x\n", {"fs/cpuacct/x/cpu.cfs_quota_us": "100000\n", "fs/cpuacct/x/cpu.cfs_period_us": "100000\n"},
     None),  # not the cpu controller
    # nothing readable, garbage
    ("", {}, None),
    ("0::/a\n", {"fs/a/cpu.max": "lots\n"}, None),
    ("0::/../../etc\n", {"fs/cpu.max": "100000 100000\n"}, 1.0),  # a path never leaves the mount
])
def test_the_cgroup_quota(tmp_path, self_cgroup, files, cpus):
    tree(tmp_path, {"self": self_cgroup, **files})
    assert cgroup_cpus(tmp_path / "fs", tmp_path / "self") == cpus


def test_the_count_is_the_smallest_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    tree(tmp_path, {"self": "0::/\n", "fs/cpu.max": "50000 100000\n"})
    assert available_cpus(str(tmp_path / "fs"), str(tmp_path / "self")) == 1  # half a CPU: one worker
    tree(tmp_path, {"fs/cpu.max": f"{(affinity + 8) * 100000} 100000\n"})
    assert available_cpus(str(tmp_path / "fs"), str(tmp_path / "self")) == affinity  # the quota allows more
    assert available_cpus(str(tmp_path / "none"), str(tmp_path / "none")) == affinity


def test_a_process_pinned_to_one_core_gets_one_worker():
    """The real affinity (`taskset`), through the runner's default."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
            "from scanner.layers.runner import LayerRunner\n"
            "print(LayerRunner(None, 'x').workers)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr
