"""The terminal table: a golden for known data, values only with reveal, long cells cut."""
from __future__ import annotations

import click

from scanner.models import ScanResult
from scanner.reports.fit import Terminal
from scanner.reports.table import TableReport
from tests import secrets_catalog as sc

GOLDEN = """\
leaky.tar (oci-archive, 2 layers, sha256:999999999999)
SEVERITY  RULE                   STATUS        LAYER                                         LOCATION         SECRET
high      github-pat             deleted in 1  0: ADD rootfs.tar / # buildkit                /app/.env:3      ghp_****...u2wr
medium    secret-named-variable  config        config                                        Env.DB_PASSWORD  Pq****...v7
low       secret-named-variable  history       1: |1 NPM_TOKEN=npm_****...L7eN rm /app/.env  history[2]       npm_****...L7eN
triaged (vendor package files, known-public keys; not gating): 1 finding(s) (1 known-public); --show-triaged lists them
not scanned: 1 item(s)
  layer 1 /app/huge.bin: larger than 8 GiB

clean.tar (docker-archive, 1 layers)
no secrets found

4 finding(s): 1 critical, 1 high, 1 medium, 1 low in 2 image(s); 1 item(s) not scanned
"""


def test_golden(result):
    assert click.unstyle(TableReport().render(result)) == GOLDEN


def test_severity_is_coloured(result):
    from dataclasses import replace

    shown = replace(result, show_triaged=True)  # the critical finding is triaged
    text = TableReport(terminal=Terminal(None, color=True)).render(shown)
    assert click.style("critical", fg="red", bold=True) in text
    assert "\x1b" not in TableReport(terminal=Terminal(None, color=False)).render(shown)  # a file, NO_COLOR


def test_no_values_without_reveal(result):
    text = TableReport().render(result)
    for value in (sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.NPM_TOKEN):
        assert value not in text


def test_values_with_reveal(revealed):
    from dataclasses import replace

    lines = click.unstyle(TableReport().render(replace(revealed, show_triaged=True))).splitlines()
    assert lines[2].endswith(sc.GITHUB_PAT)
    assert lines[3].endswith(sc.DB_PASSWORD)
    assert lines[4].endswith(sc.NPM_TOKEN)
    assert lines[6].endswith(sc.AWS_KEY_ID) and "present (known-public)" in lines[6]  # triaged, listed apart


def test_no_findings_anywhere():
    assert TableReport().render(ScanResult(())) == "0 finding(s) in 0 image(s)\n"


def test_long_cells_are_cut_in_the_middle(result):
    from dataclasses import replace

    image = result.images[0]
    f = image.findings[1]
    long_layer = replace(f.layer, created_by="RUN " + "x" * 200 + " END")
    long_hit = replace(f.hit, path="/very/" + "deep/" * 30 + ".env")
    finding = replace(f, layer=long_layer, hit=long_hit, triage=None)  # findings[1] is triaged: listed apart
    one = ScanResult((replace(image, findings=(finding,)),))
    row = TableReport(terminal=Terminal(160)).render(one).splitlines()[2]
    assert len(row) <= 160
    assert "0: RUN xxx" in row and "xxx END" in row and "…" in row  # LAYER: its start and its end
    assert "/very/deep/" in row and "classes/app.properties" in row
    wide = TableReport().render(one).splitlines()[2]  # no width (a file, --wide): everything
    assert "RUN " + "x" * 200 + " END" in wide and long_hit.path in wide
