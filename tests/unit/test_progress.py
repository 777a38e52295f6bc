"""The progress bars: a scan counts bytes; a registry run counts its layers in bytes, then images."""
from __future__ import annotations

from scanner.progress import TqdmProgress


def _bar(progress: TqdmProgress, label: str, total: int, step: int, capsys) -> str:
    progress.begin(label, total)
    progress.advance(step)
    shown = progress._bar.format_meter(**progress._bar.format_dict)
    progress.end()
    assert progress._bar is None
    capsys.readouterr()
    return shown


def test_a_scan_counts_bytes_and_keeps_the_label_s_end(capsys):
    label = "registry.example.com/team/service/with/a/long/name:1.2.3"
    shown = _bar(TqdmProgress(), label, 3 << 20, 1 << 20, capsys)
    assert shown.startswith(label[-40:] + ":") and "1.00M/3.00M" in shown


def test_a_registry_run_counts_layer_bytes_then_images(capsys):
    fleet = TqdmProgress(fleet=True)
    assert "2.00k/4.00k" in _bar(fleet, "layers", 4096, 2048, capsys)
    images = _bar(fleet, "images", 12, 5, capsys)
    assert images.startswith("images:") and "5/12" in images and "image" in images.split("5/12")[1]


def test_no_bar_no_error():
    progress = TqdmProgress()
    progress.advance(10)
    progress.end()
