"""Findings an image can make: capped per image (a small blob full of keys), provenance in linear
time (thousands of Env entries and history lines), and the config fields read since issue 19."""
from __future__ import annotations

import json

from scanner import provenance
from scanner.layers import walk
from scanner.limits import Limits
from scanner.redact import Scrubber, redact
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit
from tests.hostile.test_cli import layerscan

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def key_id(n: int) -> str:
    """A distinct AWS-shaped key id per n."""
    return "AKIA" + "".join(ALPHABET[(n >> (5 * i)) % 32] for i in range(16))


def keys_file(name: str, first: int, count: int) -> bytes:
    return kit.member(name, "".join(f"K{i}={key_id(i)}\n" for i in range(first, first + count)).encode())


def image(tmp_path, *layers: bytes, name: str = "image", **spec):
    return kit.write(tmp_path, kit.image_of(*layers, **spec), name=name)[0]


# --- findings per image --------------------------------------------------------------------------


def test_a_layer_of_files_full_of_keys_keeps_the_first_and_counts_the_rest(tmp_path, scan, monkeypatch):
    """20 files of 30 keys (each under --max-file-findings): 600 findings, 100 kept; the walk never
    holds more than 100 (not: all collected, then cut), a hardlink to a file past the cap counted."""
    most: list[int] = []
    real = walk._Walk._add

    def add(self, path, hits):
        real(self, path, hits)
        most.append(len(self.hits))

    monkeypatch.setattr(walk._Walk, "_add", add)
    files = [keys_file(f"srv/k{f}.env", f * 30, 30) for f in range(20)]
    path = image(tmp_path, kit.tar(*files, kit.header("srv/link", type_=b"1", linkname="srv/k19.env")))
    out = scan(path, Limits(max_findings=100))
    assert len(out.findings) == 100 and max(most) == 100
    assert out.skipped == ((0, "/", "over 100 findings in this layer: the first 100 reported, 530 more not "
                                    "(max findings)"),)
    assert len(scan(path, Limits(max_findings=1000)).findings) == 630


def test_the_cap_counts_every_layer_and_the_config(tmp_path, scan):
    path = image(tmp_path, kit.tar(keys_file("a.env", 0, 60)), kit.tar(keys_file("b.env", 60, 60)),
                 env=[f"AWS_KEY={key_id(500)}"])
    out = scan(path, Limits(max_findings=100))
    assert [f[3] for f in out.findings] == [0] * 60 + [1] * 40
    assert out.skipped == ((None, "/", "over 100 findings in this image: the first 100 reported, 21 more not "
                                       "(max findings)"),)


def test_max_findings_flag_and_fail_on_incomplete(tmp_path, unit_rules_path):
    path = image(tmp_path, kit.tar(keys_file("a.env", 0, 12)))
    base = [str(path), "--rules", str(unit_rules_path), "--no-cache", "-f", "json", "--disable-rule", "aws-access-key-id"]
    done = layerscan(base + ["--max-findings", "5"], tmp_path)
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and len(doc["findings"]) == 5
    assert [s["reason"] for s in doc["images"][0]["skipped"]] == [
        "over 5 findings in this layer: the first 5 reported, 7 more not (max findings)"]
    assert layerscan(base + ["--max-findings", "5", "--fail-on-incomplete"], tmp_path).returncode == 2
    assert layerscan(base + ["--max-findings", "12", "--fail-on-incomplete"], tmp_path).returncode == 1


# --- provenance in linear time ----------------------------------------------------------------------


class Counting:
    """A compiled regex whose `match` calls are counted."""

    def __init__(self, rx) -> None:
        self.rx, self.calls = rx, 0

    def match(self, *args):
        self.calls += 1
        return self.rx.match(*args)


def _env_image(tmp_path, n: int):
    env = [f"AWS_KEY_{i}={key_id(i)}" for i in range(n)]
    steps = [ik.LayerSpec("ADD base /", tar=kit.tar(kit.member("etc/hostname", b"x\n")))]
    steps += [ik.EmptyLayer(f"ENV {e}") for e in env]
    return kit.write(tmp_path, ik.ImageSpec(steps, tags=["p/p:1"], env=env), name=f"env{n}")[0]


def test_config_provenance_reads_the_history_once(tmp_path, scan, monkeypatch):
    """n Env entries, each set by its own of n history lines: the history is parsed once (n + 1
    matches), not once per finding (n * n), and every finding names the step that set it."""
    for n in (100, 300):
        counting = Counting(provenance.INSTRUCTION)
        monkeypatch.setattr(provenance, "INSTRUCTION", counting)
        out = scan(_env_image(tmp_path, n), Limits(max_findings=10 * n))
        assert counting.calls == n + 1
        env = [f for f in out.result.findings if f.hit.kind.value == "env"]
        assert len(env) == n and all(f.history.index == int(f.hit.path.rsplit("_", 1)[1]) + 1 for f in env)


def test_scrubbing_the_history_reads_each_line_once():
    """1,000 secrets over 1,000 lines: one index lookup per character, not one check per secret."""
    values = [key_id(i) for i in range(1000)]
    scrub = Scrubber(values)
    lookups = 0

    class Index(dict):
        def get(self, key, default=None):
            nonlocal lookups
            lookups += 1
            return super().get(key, default)

    scrub.index = Index(scrub.index)
    lines = [f"/bin/sh -c #(nop) ENV AWS_KEY_{i}={v}" for i, v in enumerate(values)]
    shown = [scrub(line) for line in lines]
    assert lookups <= sum(len(line) for line in lines)
    assert all(v not in s and s.endswith(f"{v[:4]}****...{v[-4:]}") for v, s in zip(values, shown))


# --- config fields read since issue 19 -------------------------------------------------------------------


def test_secrets_in_the_config_fields_read_since_issue_19_are_reported(tmp_path, unit_rules_path):
    spec = kit.image_of(kit.tar(kit.member("etc/hostname", b"x\n")), working_dir=f"/srv/{sc.AWS_KEY_ID}",
                        config_extra={"OnBuild": [f"RUN echo {sc.GITHUB_PAT}"], "StopSignal": sc.AWS_KEY_ID,
                                      "Shell": ["/bin/sh", f"-c {sc.AWS_KEY_ID}"],
                                      "Volumes": {f"/v/{sc.GITHUB_PAT}": {}}, "ExposedPorts": {f"{sc.AWS_KEY_ID}/tcp": {}}},
                        extra={"container_config": {"Env": [f"K={sc.AWS_KEY_ID}"]}})
    path = kit.write(tmp_path, spec, name="fields")[0]
    kit.rewrite_oci(path, change_config=lambda c: c["history"][0].update(comment=f"key {sc.GITHUB_PAT}",
                                                                      author=f"by {sc.AWS_KEY_ID}"))
    done = layerscan([str(path), "--rules", str(unit_rules_path), "--no-cache", "-f", "json"], tmp_path)
    got = {(f["location"]["kind"], f["location"]["path"], f["status"]) for f in json.loads(done.stdout)["findings"]}
    assert got == {("workdir", "WorkingDir", "config"),
                   ("onbuild", "OnBuild[0]", "config"), ("stopsignal", "StopSignal", "config"),
                   # a secret in a key is redacted there too (issue 19, part 5)
                   ("shell", "Shell", "config"), ("volume", f"Volumes./v/{redact(sc.GITHUB_PAT)}", "config"),
                   ("expose", f"ExposedPorts.{redact(sc.AWS_KEY_ID)}/tcp", "config"),
                   ("env", "container_config.Env.K", "config"),
                   ("history", "history[0].comment", "history"), ("history", "history[0].author", "history")}
