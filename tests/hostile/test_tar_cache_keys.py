"""A result is used or cached only under a digest of the bytes it was made from.

A layer whose media type is not a tar (`...+json`) is scanned as one document; the diff_id its
config gives it is checked against nothing. Was: its (clean) result was stored in the run's
table of layers seen, in the layer cache and in a fleet's unique layers under that diff_id, so
one pushed image could blank out the layer of that diff_id in every other image scanned with it
or after it. Each test has image A's document claim image B's diff_id; B's secret must be found."""
from __future__ import annotations

from scanner.cache import SqliteLayerCache
from scanner.fleet import unique_layers
from scanner.layers.runner import LayerRunner, layer_key
from scanner.models import Blob, BlobKind, Image, Layer, SourceKind
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit

ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()
TAR = kit.tar(kit.member("app/.env", ENV))
DIFF_ID = ik.sha256(TAR)
DOC = b'{"predicateType": "https://slsa.dev/provenance/v1", "note": "nothing here"}'


def blob(data: bytes) -> Blob:
    return Blob("<memory>", 0, len(data), ik.sha256(data), kind=BlobKind.MEMORY, data=data)


def attacker() -> Layer:  # image A: a document that says it is B's layer
    return Layer(0, blob(DOC), DIFF_ID, media_type="application/vnd.in-toto+json")


def victim() -> Layer:  # image B: the real tar of that diff_id, with a secret
    return Layer(0, blob(TAR), DIFF_ID, media_type="application/vnd.oci.image.layer.v1.tar")


def test_a_document_never_stands_for_a_tar_in_the_same_run(content):
    runner = LayerRunner(content, "rules", workers=1)
    assert runner.scan([attacker()], lambda n: None)[0].hits == ()
    assert [h.path for h in runner.scan([victim()], lambda n: None)[0].hits] == ["/app/.env"]


def test_a_document_never_stands_for_a_tar_in_one_image(content):
    runner = LayerRunner(content, "rules", workers=1)
    doc, tar = attacker(), victim()
    scans = runner.scan([doc, Layer(1, tar.blob, tar.diff_id, tar.media_type)], lambda n: None)
    assert [h.path for h in scans[1].hits] == ["/app/.env"]


def test_a_document_never_stands_for_a_tar_in_the_cache(content, tmp_path):
    cache = SqliteLayerCache(str(tmp_path / "cache"))
    LayerRunner(content, "rules", cache=cache, workers=1).scan([attacker()], lambda n: None)
    later = LayerRunner(content, "rules", cache=cache, workers=1)  # another job, the same shared cache
    assert [h.path for h in later.scan([victim()], lambda n: None)[0].hits] == ["/app/.env"]


def test_a_fleet_keeps_both_layers(content):
    images = [Image(ref, SourceKind.REGISTRY, None, {}, (layer,)) for ref, layer in
              (("a", attacker()), ("b", victim()))]
    assert len(unique_layers(images)) == 2


def test_the_keys(content):
    assert layer_key(victim()) == DIFF_ID
    assert layer_key(attacker()) == "document:" + ik.sha256(DOC)
