"""The Docker CLI plugin's protocol (metadata, the plugin name first) and its installation."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scanner import __version__
from scanner.plugin import EXECUTABLE, PluginError, install, main, plugins_dir


def test_metadata(capsys):
    with pytest.raises(SystemExit) as done:
        main(["docker-cli-plugin-metadata"])
    meta = json.loads(capsys.readouterr().out)
    assert done.value.code == 0
    assert meta["SchemaVersion"] == "0.1.0" and meta["Version"] == __version__
    assert meta["Vendor"] == "layerscan" and meta["ShortDescription"]


def test_the_plugin_name_comes_first(capsys):
    with pytest.raises(SystemExit) as done:
        main(["layerscan", "--version"])
    assert (done.value.code, capsys.readouterr().out) == (0, f"layerscan, version {__version__}\n")


def test_install_honours_docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "conf"))
    assert plugins_dir() == tmp_path / "conf" / "cli-plugins"
    target, _ = install()
    assert target == tmp_path / "conf" / "cli-plugins" / EXECUTABLE and os.access(target, os.X_OK)
    meta = subprocess.run([str(target), "docker-cli-plugin-metadata"], capture_output=True, text=True, timeout=60)
    assert json.loads(meta.stdout)["Version"] == __version__
    with pytest.raises(PluginError, match="exists"):
        install()
    assert install(force=True)[0] == target


def test_install_without_an_entry_point_writes_a_script(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr("scanner.plugin._console_script", lambda: None)
    target, what = install()
    assert not target.is_symlink() and sys.executable in target.read_text() and "script" in what
