"""The overlay labels every hit: present, deleted (and by which layer), or overwritten."""
from __future__ import annotations

import pytest

from scanner.layers.overlay import Label, Overlay, ancestors
from scanner.layers.walk import scan_layer
from scanner.models import Status
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import layer_file

AWS = f"KEY={sc.AWS_KEY_ID}\n".encode()
GH = f"token: {sc.GITHUB_PAT}\n".encode()

P, D, O = Status.PRESENT, Status.DELETED, Status.OVERWRITTEN


def labelled(tmp_path, content, layers: list[list[ik.Entry]]) -> list[tuple]:
    """(layer, path, rule, status, removed_in) for every hit of every layer, bottom-up."""
    scans = [scan_layer(layer_file(tmp_path / f"l{i}.tar", entries, index=i), content)
             for i, entries in enumerate(layers)]
    overlay = Overlay(scans)
    out = []
    for i, scan in enumerate(scans):
        for hit in scan.hits:
            label = overlay.label(i, hit)
            out.append((i, hit.path, hit.rule_id, label.status, label.removed_in))
    return out


def base(*extra: ik.Entry) -> list[ik.Entry]:
    return [ik.dir("/app"), ik.dir("/app/conf"), ik.file("/app/conf/.env", AWS), *extra]


def test_present(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.file("/other", b"x")]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", P, None)]


def test_deleted_by_whiteout(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.whiteout("/app/conf/.env")]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", D, 1)]


@pytest.mark.parametrize("parent", ["/app/conf", "/app"])
def test_deleted_by_whiteout_of_a_parent_dir(tmp_path, content, parent):
    assert labelled(tmp_path, content, [base(), [ik.whiteout(parent)]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", D, 1)]


@pytest.mark.parametrize("opaque_dir", ["/app/conf", "/app", "/"])
def test_deleted_by_opaque_dir(tmp_path, content, opaque_dir):
    later = [ik.dir(opaque_dir), ik.opaque(opaque_dir)] if opaque_dir != "/" else [ik.opaque("/")]
    assert labelled(tmp_path, content, [base(), later]) == [(0, "/app/conf/.env", "unit-aws-key-id", D, 1)]


def test_opaque_dir_hides_lower_layers_only(tmp_path, content):
    """Files the opaque layer itself adds under the directory are what is visible."""
    assert labelled(tmp_path, content, [
        base(), [ik.dir("/app/conf"), ik.opaque("/app/conf"), ik.file("/app/conf/new.env", GH)]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", D, 1),
        (1, "/app/conf/new.env", "unit-github-pat", P, None)]


def test_opaque_on_a_sibling_does_not_delete(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.dir("/app/confx"), ik.opaque("/app/confx")]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", P, None)]


def test_whiteout_of_a_sibling_prefix_does_not_delete(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.whiteout("/app/conf/.en"), ik.whiteout("/app/con")]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", P, None)]


def test_overwritten_by_a_later_layer(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.dir("/app"), ik.file("/app/conf/.env", b"clean\n")]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", O, 1)]


def test_rewritten_with_another_secret_keeps_both(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.file("/app/conf/.env", GH)]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", O, 1),
        (1, "/app/conf/.env", "unit-github-pat", P, None)]


def test_rewritten_with_the_same_secret_keeps_both(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.file("/other", b"x")], [ik.file("/app/conf/.env", AWS)]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", O, 2),
        (2, "/app/conf/.env", "unit-aws-key-id", P, None)]


@pytest.mark.parametrize("replacement", [
    ik.file("/app/conf", b"now a file\n"),
    ik.symlink("/app/conf", "/tmp"),
    ik.file("/app", b"now a file\n"),
    ik.symlink("/app", "/srv"),
])
def test_directory_replaced_by_a_file_deletes_what_was_under_it(tmp_path, content, replacement):
    assert labelled(tmp_path, content, [base(), [replacement]]) == [(0, "/app/conf/.env", "unit-aws-key-id", D, 1)]


@pytest.mark.parametrize("replacement", [
    ik.dir("/app/conf/.env"), ik.symlink("/app/conf/.env", "/dev/null"), ik.hardlink("/app/conf/.env", "/x"),
])
def test_file_replaced_by_a_directory_or_link_is_overwritten(tmp_path, content, replacement):
    layer1 = [ik.file("/x", b"x"), replacement]
    assert labelled(tmp_path, content, [base(), layer1]) == [(0, "/app/conf/.env", "unit-aws-key-id", O, 1)]


def test_duplicate_entry_within_one_layer(tmp_path, content):
    layer = [ik.dir("/app"), ik.file("/app/.env", AWS), ik.file("/app/.env", GH)]
    assert labelled(tmp_path, content, [layer]) == [
        (0, "/app/.env", "unit-aws-key-id", O, 0),
        (0, "/app/.env", "unit-github-pat", P, None)]


def test_duplicate_entry_then_deleted_later(tmp_path, content):
    layer = [ik.file("/app/.env", AWS), ik.file("/app/.env", GH)]
    assert labelled(tmp_path, content, [layer, [ik.whiteout("/app/.env")]]) == [
        (0, "/app/.env", "unit-aws-key-id", O, 0),
        (0, "/app/.env", "unit-github-pat", D, 1)]


@pytest.mark.parametrize("later", [
    [ik.dir("/app")], [ik.dir("/app/conf")], [ik.dir("/"), ik.dir("/app"), ik.dir("/app/conf")],
])
def test_a_later_dir_entry_for_a_parent_does_not_delete(tmp_path, content, later):
    assert labelled(tmp_path, content, [base(), later]) == [(0, "/app/conf/.env", "unit-aws-key-id", P, None)]


def test_removed_in_is_the_first_layer_that_removed_it(tmp_path, content):
    assert labelled(tmp_path, content, [
        base(),
        [ik.file("/unrelated", b"x")],
        [ik.whiteout("/app/conf/.env")],
        [ik.whiteout("/app")],
        [ik.file("/app/conf/.env", b"again, clean\n")],
    ]) == [(0, "/app/conf/.env", "unit-aws-key-id", D, 2)]


def test_overwritten_then_deleted_reports_the_overwrite(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.file("/app/conf/.env", b"x")], [ik.whiteout("/app")]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", O, 1)]


def test_deleted_and_restored_is_still_deleted_in_the_first(tmp_path, content):
    assert labelled(tmp_path, content, [base(), [ik.whiteout("/app/conf/.env")], [ik.file("/app/conf/.env", AWS)]]) == [
        (0, "/app/conf/.env", "unit-aws-key-id", D, 1),
        (2, "/app/conf/.env", "unit-aws-key-id", P, None)]


def test_hardlink_copy_survives_deletion_of_the_original(tmp_path, content):
    layer0 = [ik.file("/app/.env", AWS), ik.hardlink("/srv/keep", "/app/.env")]
    assert labelled(tmp_path, content, [layer0, [ik.whiteout("/app/.env")]]) == [
        (0, "/app/.env", "unit-aws-key-id", D, 1),
        (0, "/srv/keep", "unit-aws-key-id", P, None)]


def test_whiteout_in_the_same_layer_as_the_file_does_not_relabel_it(tmp_path, content):
    """A whiteout only hides lower layers (the same layer's own file stays)."""
    assert labelled(tmp_path, content, [[ik.whiteout("/app/.env"), ik.file("/app/.env", AWS)]]) == [
        (0, "/app/.env", "unit-aws-key-id", P, None)]


def test_every_layer_hit_keeps_its_label_order(tmp_path, content):
    """Many hits over many layers: each gets the label of its own path only."""
    layers = [[ik.file(f"/d{i}/.env", AWS) for i in range(4)],
              [ik.whiteout("/d0/.env"), ik.file("/d1/.env", b"x"), ik.dir("/d2"), ik.opaque("/d2")]]
    assert labelled(tmp_path, content, layers) == [
        (0, "/d0/.env", "unit-aws-key-id", D, 1),
        (0, "/d1/.env", "unit-aws-key-id", O, 1),
        (0, "/d2/.env", "unit-aws-key-id", D, 1),
        (0, "/d3/.env", "unit-aws-key-id", P, None)]


def test_ancestors():
    assert ancestors("/a/b/c") == ["/a/b", "/a", "/"]
    assert ancestors("/a") == ["/"]
    assert ancestors("/") == []


def test_label_defaults():
    assert Label(Status.PRESENT) == Label(Status.PRESENT, None)


def test_only_the_paths_of_hits_and_their_parents_are_kept(tmp_path, content):
    """Memory goes with the findings: of a layer's many entries, the overlay keeps the ones that
    can change a label (the hit's path and its parent directories), and labels as before."""
    many = [ik.file(f"/data/f{i}", b"x") for i in range(2000)]
    layers = [base(*many), [ik.whiteout("/app/conf"), *many]]
    scans = [scan_layer(layer_file(tmp_path / f"l{i}.tar", entries, index=i), content)
             for i, entries in enumerate(layers)]
    overlay = Overlay(scans)
    assert [sorted(lp.adds) for lp in overlay._layers] == [["/app", "/app/conf", "/app/conf/.env"], []]
    assert [sorted(lp.whiteouts) for lp in overlay._layers] == [[], ["/app/conf"]]
    assert overlay.label(0, scans[0].hits[0]) == Label(D, 1)
