"""Nothing from an image reaches a terminal, a page or a log raw (issue 19, part 4), and a secret in a
name is redacted there too (part 5): each class of control character in each field an image sets,
through the real CLI, in every format, on stdout and in `-o` files."""
from __future__ import annotations

import json
import re

import pytest

from scanner.cli import main
from scanner.progress import TqdmProgress
from scanner.redact import escape
from scanner.reports import Format
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit

# each class: (name, the raw text planted, how it must be shown)
CLASSES = [
    ("csi", "\x1b[31m", "\\x1b[31m"),
    ("osc52", "\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),
    ("c1-csi", "\x9b2J", "\\x9b2J"),
    ("c1-osc", "\x9d0;title\x9c", "\\x9d0;title\\x9c"),
    ("bidi-override", "\u202egnp.", "\\u202egnp."),
    ("bidi-isolate", "\u2066x\u2069", "\\u2066x\\u2069"),
    ("zero-width", "a\u200bb\ufeff", "a\\u200bb\\ufeff"),
    ("line-separator", "a\u2028b", "a\\u2028b"),
    ("cr-del", "a\rb\x7f", "a\\x0db\\x7f"),
]
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def hostile(tmp_path, bad: str):
    """`bad` in a file's path, a layer's instruction, an Env name and value, a Label key and
    value, and a history line of an empty layer; each next to a secret that is reported."""
    layer = kit.tar(kit.member(f"app/{bad}.env", ENV))
    spec = kit.image_of(layer, created_by=[f"COPY {bad} /app/"],
                        env=[f"K{bad}Y={sc.AWS_KEY_ID}", f"TOKEN={sc.GITHUB_PAT}{bad}"],
                        labels={f"l{bad}": f"{sc.AWS_KEY_ID} {bad}"})
    spec.steps.append(ik.EmptyLayer(f"RUN echo {bad} {sc.GITHUB_PAT}"))
    path, _ = kit.write(tmp_path, spec, name="escaping")
    return path


def test_escape_spells_out_every_class():
    for _, raw, shown in CLASSES:
        assert escape(raw) == shown
        assert not UNSAFE.search(escape(raw))
    assert escape("plain /app/.env 中文 é") == "plain /app/.env 中文 é"


@pytest.mark.parametrize("name,raw,shown", CLASSES, ids=[c[0] for c in CLASSES])
@pytest.mark.parametrize("fmt", [f.value for f in Format])
def test_no_raw_control_in_any_format(tmp_path, capsys, unit_rules_path, name, raw, shown, fmt):
    image = hostile(tmp_path, raw)
    args = [str(image), "--rules", str(unit_rules_path), "--no-cache", "--no-progress", "-f", fmt]
    code, out, err = run(capsys, *args)
    assert code == 1, err
    report = tmp_path / f"report.{fmt}"
    assert run(capsys, *args, "-o", str(report))[0] == 1
    for text in (out, err, report.read_text(encoding="utf-8")):
        assert not UNSAFE.search(text), (fmt, UNSAFE.search(text))
    if fmt in ("table", "html"):  # shown, spelt out, not dropped
        assert shown in out
    if fmt == "json":  # the data itself stays exact (json.dumps spells it \uXXXX)
        doc = json.loads(out)
        assert any(raw in f["location"]["path"] for f in doc["findings"])


def test_error_messages_are_escaped(tmp_path, capsys):
    code, out, err = run(capsys, str(tmp_path / "x\x1b]52;c;aGk=\x07\u202e.tar"), "--no-progress")
    assert code == 2 and err.startswith("layerscan: error: ")
    assert not UNSAFE.search(err) and "\\x1b]52" in err


def test_the_progress_bar_is_escaped(capsys):
    bar = TqdmProgress()
    bar.begin("img\x1b]52;c;aGk=\x07\u202e:1", 10)
    bar.advance(5)
    bar.end()
    err = capsys.readouterr().err
    assert "\x1b]52" not in err and "\u202e" not in err


# --- a secret in a name ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [f.value for f in Format])
def test_a_secret_in_a_name_is_redacted_everywhere(tmp_path, capsys, unit_rules_path, fmt):
    pat = sc.GITHUB_PAT
    layer = kit.tar(kit.member(f"app/{pat}.env", ENV), kit.member(f"app/{pat}/inner.env", ENV))
    spec = kit.image_of(layer, created_by=[f"RUN echo {pat} > /app/{pat}.env"],
                        env=[f"{pat}=1", f"K_{sc.AWS_KEY_ID}=x"], labels={f"{pat}": "v", "l": f"{pat}"})
    image, _ = kit.write(tmp_path, spec, name="names")
    args = [str(image), "--rules", str(unit_rules_path), "--no-cache", "--no-progress", "-f", fmt]
    code, out, err = run(capsys, *args)
    report = tmp_path / f"names.{fmt}"
    assert run(capsys, *args, "-o", str(report))[0] == code == 1
    for text in (out, err, report.read_text(encoding="utf-8")):
        assert pat not in text and sc.AWS_KEY_ID not in text
    assert "ghp_****...u2wr" in out or fmt in ("json", "sarif") and "ghp_****...u2wr" in json.dumps(json.loads(out))


def test_names_are_redacted_in_the_result_model(tmp_path, capsys, unit_rules_path):
    pat = sc.GITHUB_PAT
    layer = kit.tar(kit.member(f"app/{pat}.env", ENV))
    spec = kit.image_of(layer, env=[f"{pat}=1"], labels={f"{pat}": "v"})
    image, _ = kit.write(tmp_path, spec, name="model")
    code, out, _ = run(capsys, str(image), "--rules", str(unit_rules_path), "--no-cache", "--no-progress",
                       "-f", "json")
    paths = {f["location"]["path"] for f in json.loads(out)["findings"]}
    assert "/app/ghp_****...u2wr.env" in paths
    assert "Env.ghp_****...u2wr" in paths and "Labels.ghp_****...u2wr" in paths
