"""`docker layerscan IMAGE`: layerscan as a Docker CLI plugin.

The Docker CLI finds `docker-layerscan` in `$DOCKER_CONFIG/cli-plugins/` (default
`~/.docker/cli-plugins/`), runs `docker-layerscan docker-cli-plugin-metadata` to list it, and runs
`docker-layerscan layerscan ARGS...` for `docker layerscan ARGS...`: the plugin name comes first.
`layerscan docker-plugin install` puts the executable there.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Optional

import click

from scanner import __version__
from scanner.errors import ExitCode, LayerscanError

NAME = "layerscan"
EXECUTABLE = f"docker-{NAME}"
METADATA = {"SchemaVersion": "0.1.0", "Vendor": "layerscan", "Version": __version__,
            "ShortDescription": "Find secrets baked into container images (every layer, config, history)"}


class PluginError(LayerscanError):
    """The plugin cannot be installed."""


def main(argv: Optional[list[str]] = None) -> None:
    """The `docker-layerscan` executable."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["docker-cli-plugin-metadata"]:
        print(json.dumps(METADATA))
        sys.exit(0)
    if args[:1] == [NAME]:  # invoked by the Docker CLI: the plugin's name first
        args = args[1:]
    from scanner.cli import main as layerscan

    layerscan(args)


def plugins_dir() -> Path:
    """Where the Docker CLI looks for a user's plugins: DOCKER_CONFIG, else ~/.docker."""
    config = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(config) / "cli-plugins"


def _console_script() -> Optional[Path]:
    """The `docker-layerscan` entry point installed beside this Python (a venv's bin/), if any."""
    for where in (Path(sys.executable).parent, Path(sys.argv[0]).resolve().parent):
        candidate = where / EXECUTABLE
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(EXECUTABLE)
    return Path(found) if found else None


def install(force: bool = False) -> tuple[Path, str]:
    """A symlink to the `docker-layerscan` entry point, or a two-line script that runs this
    Python's `scanner.plugin` where there is none (a source checkout)."""
    target = plugins_dir() / EXECUTABLE
    if (target.exists() or target.is_symlink()) and not force:
        raise PluginError(f"{target} exists (--force replaces it)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        script = _console_script()
        if script is not None:
            target.symlink_to(script)
            return target, f"a link to {script}"
        target.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m scanner.plugin \"$@\"\n")
        target.chmod(0o755)
        return target, f"a script running {sys.executable} -m scanner.plugin"
    except OSError as exc:
        raise PluginError(f"cannot install {target}: {exc.strerror}") from None


@click.group("docker-plugin", short_help="Install layerscan as a Docker CLI plugin: `docker layerscan`.")
def docker_plugin() -> None:
    """`docker layerscan IMAGE...`: layerscan as a Docker CLI plugin, in $DOCKER_CONFIG/cli-plugins
    (default ~/.docker/cli-plugins)."""


@docker_plugin.command("install", short_help="Put docker-layerscan where the Docker CLI finds it.")
@click.option("--force", is_flag=True, help="Replace an existing docker-layerscan.")
def install_cmd(force: bool) -> int:
    """Put docker-layerscan in $DOCKER_CONFIG/cli-plugins (default ~/.docker/cli-plugins)."""
    target, what = install(force)
    click.echo(f"installed {target} ({what}); try: docker layerscan --help", err=True)
    return ExitCode.CLEAN


@docker_plugin.command("uninstall", short_help="Remove docker-layerscan from the Docker CLI's plugins.")
def uninstall_cmd() -> int:
    """Remove docker-layerscan from $DOCKER_CONFIG/cli-plugins."""
    target = plugins_dir() / EXECUTABLE
    if target.exists() or target.is_symlink():
        target.unlink()
        click.echo(f"removed {target}", err=True)
    return ExitCode.CLEAN


if __name__ == "__main__":
    main()
