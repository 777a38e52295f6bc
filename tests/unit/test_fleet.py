"""Fleet pieces without a registry: targets, pagination links, layer dedupe, the summary."""
from __future__ import annotations

import pytest

from scanner.fleet import FleetTarget, _next_link, parse_target, summarize, unique_layers
from scanner.models import (Blob, BlobKind, DetectorKind, Finding, Hit, Image, ImageResult, Layer, LocationKind,
                            ScanResult, Secret, Severity, SourceKind, Status)
from scanner.sources.interface import SourceError


@pytest.mark.parametrize("text, host, prefix", [
    ("127.0.0.1:5000", "127.0.0.1:5000", ""),
    ("registry.example.com/team/", "registry.example.com", "team"),
    ("docker://localhost/a/b", "localhost", "a/b"),
])
def test_parse_target(text, host, prefix):
    assert parse_target(text) == FleetTarget(host, prefix)


def test_a_target_without_a_registry_host_is_refused():
    with pytest.raises(SourceError, match="HOST"):
        parse_target("team/app")


def test_prefix_matches_whole_path_components():
    target = FleetTarget("r:1", "team/app")
    assert target.matches("team/app") and target.matches("team/app/sub")
    assert not target.matches("team/apple") and not target.matches("other/team/app")
    assert FleetTarget("r:1").matches("anything")


def test_next_link():
    assert _next_link('</v2/_catalog?last=b&n=2>; rel="next"', "/v2/_catalog") == "/v2/_catalog?last=b&n=2"
    assert _next_link('<https://r.example/v2/x/tags/list?n=2&last=3>; rel=next', "/v2/x/tags/list") \
        == "/v2/x/tags/list?n=2&last=3"
    assert _next_link("", "/v2/_catalog") is None
    assert _next_link('</v2/_catalog?last=b>; rel="prev"', "/v2/_catalog") is None


def _layer(index: int, diff_id: str, size: int) -> Layer:
    return Layer(index, Blob(f"https://r/v2/x/blobs/{diff_id}", 0, size, "sha256:" + diff_id[-1] * 64,
                             kind=BlobKind.REGISTRY), "sha256:" + diff_id)


def _image(ref: str, *layers: Layer) -> Image:
    return Image(ref, SourceKind.REGISTRY, None, {}, layers)


def test_unique_layers_by_diff_id_renumbered():
    a = _image("a", _layer(0, "1", 10), _layer(1, "2", 20))
    b = _image("b", _layer(0, "1", 10), _layer(1, "3", 30), _layer(2, "2", 20))
    unique = unique_layers([a, b])
    assert [layer.diff_id for layer in unique] == ["sha256:1", "sha256:2", "sha256:3"]
    assert [layer.index for layer in unique] == [0, 1, 2]


def _finding(image: str, sha: str, suppressed=None) -> Finding:
    hit = Hit("rule", DetectorKind.SIGNATURE, Severity.HIGH, "T", "/x", 1, Secret(sha, "ab****"),
              kind=LocationKind.FILE)
    return Finding("fp", hit, image, Status.PRESENT, None, suppressed=suppressed)


def test_summary_counts_bytes_and_names_the_images_of_each_secret():
    a = _image("a", _layer(0, "1", 10), _layer(1, "2", 20))
    b = _image("b", _layer(0, "1", 10), _layer(1, "3", 30))
    results = (ImageResult("a", SourceKind.REGISTRY, None, (), (_finding("a", "s1"), _finding("a", "s2")), ()),
               ImageResult("b", SourceKind.REGISTRY, None, (), (_finding("b", "s1"), _finding("b", "s3", "baseline")),
                           ()))
    summary = summarize(ScanResult(results), [a, b], unique_layers([a, b]))
    assert (summary.images, summary.layers, summary.unique_layers) == (2, 4, 3)
    assert (summary.total_bytes, summary.unique_bytes, summary.findings) == (70, 60, 3)
    assert {s: i for s, _, i in summary.secrets} == {"s1": ("a", "b"), "s2": ("a",)}
    assert summary.as_dict()["secrets"][0] == {"sha256": "s1", "redacted": "ab****", "images": ["a", "b"]}
    assert "3 unique layer(s) of 4" in summary.text()


def test_the_summary_text_names_a_few_images_per_secret():
    from scanner.fleet import FleetSummary

    many = tuple(f"r/app{i}:1" for i in range(8))
    text = FleetSummary(8, 8, 1, 80, 10, 8, (("ab" * 32, "x****", many),)).text()
    assert "8 image(s): r/app0:1, r/app1:1, r/app2:1, r/app3:1, r/app4:1 and 3 more" in text


def test_open_cache_chooses_by_location(tmp_path):
    from scanner.cache import SqliteLayerCache, open_cache

    assert isinstance(open_cache(str(tmp_path / "c")), SqliteLayerCache)


def test_an_unreachable_postgres_cache_names_it_without_the_password():
    pytest.importorskip("psycopg")
    import socket

    from scanner.cache import CacheError, open_cache

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CacheError) as err:
        open_cache(f"postgresql://me:s3cretpw@127.0.0.1:{port}/db")
    assert "postgresql://me@127.0.0.1" in str(err.value) and "s3cretpw" not in str(err.value)


def test_the_dask_task_takes_the_time_left_not_the_clients_clock():
    from scanner.limits import Deadline, Limits

    assert Limits().deadline.portable() is None
    left, timeout = Limits().until(Deadline.start(30.0)).deadline.portable()
    assert 29 < left <= 30 and timeout == 30.0
    resumed = Deadline.resumed((10.0, 30.0))
    assert 9 < resumed.left() <= 10 and resumed.timeout == 30.0
