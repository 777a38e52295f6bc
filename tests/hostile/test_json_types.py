"""Wrong JSON types anywhere in an index, manifest or config: one error line naming the field
(exit 2), never an internal error, never a silent clean result; and a nested index bomb in a
local layout, read once per index and stopped by the manifest budget."""
from __future__ import annotations

import json
import time

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit

ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()


def layout(tmp_path, kind="oci-layout"):
    return kit.write(tmp_path, kit.image_of(kit.tar(kit.member("a", ENV))), kind)[0]


def cfg(path: str, value):
    def change(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return change


CONFIG_CASES = {
    "Env is a number": (cfg("config.Env", 5), "config.Env: expected a list of strings, got a number"),
    "Env holds a number": (cfg("config.Env", ["A=1", 7]), "config.Env[1]: expected a string, got a number"),
    "Env is an object": (cfg("config.Env", {"A": "1"}), "config.Env: expected a list of strings, got an object"),
    "Cmd is an object": (cfg("config.Cmd", {"a": 1}), "config.Cmd: expected a string or a list of strings, got an object"),
    "Entrypoint holds a list": (cfg("config.Entrypoint", [["sh"]]),
                                "config.Entrypoint: expected a string or a list of strings, got a list"),
    "Labels is a list": (cfg("config.Labels", ["a=b"]), "config.Labels: expected an object, got a list"),
    "a Label is a number": (cfg("config.Labels", {"a": 1}), "config.Labels.a: expected a string, got a number"),
    "User is a list": (cfg("config.User", ["root"]), "config.User: expected a string, got a list"),
    "OnBuild is a string": (cfg("config.OnBuild", "RUN x"), "config.OnBuild: expected a list of strings, got a string"),
    "ExposedPorts is a list": (cfg("config.ExposedPorts", ["80/tcp"]),
                               "config.ExposedPorts: expected an object, got a list"),
    "container_config Env": (cfg("container_config.Env", 1),
                             "container_config.Env: expected a list of strings, got a number"),
    "history is an object": (cfg("history", {"created_by": "x"}),
                             "history: expected a list of objects, got an object"),
    "created_by is a list": (lambda c: c["history"][0].update(created_by=["RUN", "x"]),
                             "history[0].created_by: expected a string, got a list"),
    "empty_layer is a string": (lambda c: c["history"][0].update(empty_layer="no"),
                                "history[0].empty_layer: expected true or false, got a string"),
    "architecture is a number": (cfg("architecture", 64), "architecture: expected a string, got a number"),
    "os is a huge number": (cfg("os", 10 ** 300), "os: expected a string, got a number"),
    "config is a list": (cfg("config", []), "config: expected an object, got a list"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_a_config_field_of_the_wrong_type(tmp_path, scan, case):
    change, message = CONFIG_CASES[case]
    path = layout(tmp_path)
    kit.rewrite_oci(path, change_config=change)
    outcome = scan(path)
    assert outcome.error is not None and outcome.error.endswith(f": config: {message}"), outcome.error


def mf(key: str, value):
    def change(manifest: dict) -> None:
        node = manifest
        *parents, last = key.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return change


MANIFEST_CASES = {
    "layers is null": (mf("layers", None), "not an image manifest"),
    "layers is an object": (mf("layers", {}), "not an image manifest"),
    "config is a list": (mf("config", []), "not an image manifest"),
    "a layer size is huge": (mf("layers.0.size", 2 ** 70), "layers[0].size: expected a size (0 to 2^63-1), "
                                                           "got a number out of range"),
    "a layer size is negative": (mf("layers.0.size", -1), "layers[0].size: expected a size (0 to 2^63-1), "
                                                          "got a number out of range"),
    "a layer size is a string": (mf("layers.0.size", "12"), "layers[0].size: expected a size (0 to 2^63-1), "
                                                            "got a string"),
    "a layer mediaType is a list": (mf("layers.0.mediaType", ["x"]), "layers[0].mediaType: expected a string, got a list"),
    "an annotation is a number": (mf("annotations", {"a": 1}), "annotations.a: expected a string, got a number"),
    "the config digest is a number": (mf("config.digest", 5), "config.digest: expected a string, got a number"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_a_manifest_field_of_the_wrong_type(tmp_path, scan, case):
    change, message = MANIFEST_CASES[case]
    path = layout(tmp_path)
    kit.rewrite_oci(path, change_manifest=change)
    outcome = scan(path)
    assert outcome.error is not None and outcome.error.endswith(message), outcome.error


INDEX_CASES = {
    "manifests is an object": (lambda i: i.update(manifests={}), "index has no manifests list"),
    "a platform os is a number": (lambda i: i["manifests"][0].update(platform={"os": 1, "architecture": "amd64"}),
                                  "manifests[0].platform.os: expected a string, got a number"),
    "a platform is a list": (lambda i: i["manifests"][0].update(platform=["linux"]),
                             "manifests[0].platform: expected an object, got a list"),
    "a mediaType is an object": (lambda i: i["manifests"][0].update(mediaType={}),
                                 "manifests[0].mediaType: expected a string, got an object"),
    "annotations is a list": (lambda i: i["manifests"][0].update(annotations=["a"]),
                              "manifests[0].annotations: expected an object, got a list"),
}


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
@pytest.mark.parametrize("case", sorted(INDEX_CASES))
def test_an_index_field_of_the_wrong_type(tmp_path, scan, case, kind):
    change, message = INDEX_CASES[case]
    path = layout(tmp_path, kind)
    files = ik.read_archive(path)
    index = json.loads(files["index.json"])
    change(index)
    ik.replace_member(path, "index.json", json.dumps(index).encode())
    outcome = scan(path)
    assert outcome.error is not None and outcome.error.endswith(message), outcome.error


@pytest.mark.parametrize("change,message", [
    (lambda d: d[0].update(Layers="a.tar"), "manifest.json: [0].Layers: expected a list of strings, got a string"),
    (lambda d: d[0].update(RepoTags=[1]), "manifest.json: [0].RepoTags[0]: expected a string, got a number"),
    (lambda d: d[0].update(Config=["x"]), "manifest.json: [0].Config: expected a string, got a list"),
])
def test_a_docker_archive_manifest_of_the_wrong_types(tmp_path, scan, change, message):
    path = kit.write(tmp_path, kit.image_of(kit.tar(kit.member("a", ENV))), "docker-legacy", "none")[0]
    kit.rewrite_docker(path, change)
    outcome = scan(path)
    assert outcome.error is not None and outcome.error.endswith(message), outcome.error


# --- a nested index bomb in a layout ----------------------------------------------------------------

def bomb(tmp_path, fan: int, depth: int, distinct: bool):
    """index.json -> `fan` references to the next index, `depth` levels, then the image. With
    `distinct`, every reference is another index (a tree); without, the same one (a chain)."""
    path = layout(tmp_path)
    index = json.loads((path / "index.json").read_bytes())
    level = [index["manifests"][0]]
    for d in range(depth):
        refs = []
        for i in range(fan if distinct and d == depth - 1 else 1):
            body = ik.canonical_json({"schemaVersion": 2, "mediaType": ik.OCI_INDEX,
                                      "manifests": level, "annotations": {"n": f"{d}.{i}"}})
            (path / ik.blob_path(ik.sha256(body))).write_bytes(body)
            refs.append({"mediaType": ik.OCI_INDEX, "digest": ik.sha256(body), "size": len(body)})
        level = refs * (1 if distinct and d == depth - 1 else fan)
    index["manifests"] = level
    (path / "index.json").write_bytes(ik.canonical_json(index))
    return path


@pytest.fixture
def warm(tmp_path_factory, unit_rules):
    """One scan outside the guard first: the detectors' first finding loads libraries (ctypes)."""
    from scanner.pipeline import ScanOptions, Scanner

    Scanner(unit_rules, ScanOptions(workers=1)).scan([str(layout(tmp_path_factory.mktemp("warm")))])


def test_a_nested_index_chain_is_read_once_per_index(tmp_path, warm, scan):
    """40 references, 4 levels: 40^4 = 2.5 million paths, and 4 indexes."""
    path = bomb(tmp_path, 40, 4, distinct=False)
    start = time.monotonic()
    outcome = scan(path)
    assert outcome.error is None and len(outcome.findings) == 1
    assert time.monotonic() - start < 20


def test_a_fanning_index_stops_at_the_manifest_budget(tmp_path, scan):
    path = bomb(tmp_path, 300, 1, distinct=True)
    outcome = scan(path)
    assert outcome.error is not None and outcome.error.endswith(
        "over 256 manifests and indexes for one image; nothing reported"), outcome.error
