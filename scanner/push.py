"""`layerscan push IMAGE`: the gate and the push in one step. The image is scanned straight from
the local Docker engine (`docker-daemon:`), and pushed with the engine (docker SDK) only when the
gate passes.

The tag is resolved to an image id before the scan and checked again before and after the push:
if someone re-tags the name meanwhile, what would be pushed is not what was scanned, and that is
an error, never a silent push.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from scanner.errors import LayerscanError
from scanner.sources.daemon import engine_client
from scanner.sources.remote import RegistryOptions

DAEMON = "docker-daemon:"


class PushError(LayerscanError):
    """The image cannot be pushed (or was not the one scanned)."""


@dataclass(frozen=True)
class Target:
    """What to push: `repository:tag`, as the engine names it."""

    repository: str
    tag: str

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def spec(self) -> str:
        """How the scanner reads it: from the engine, never from a file or a registry."""
        return DAEMON + self.name


def push_target(given: str) -> Target:
    """`NAME[:TAG]` (or `docker-daemon:NAME[:TAG]`); no tag means `latest`, as `docker push` does."""
    from docker.utils import parse_repository_tag

    name = given[len(DAEMON):] if given.startswith(DAEMON) else given
    repository, tag = parse_repository_tag(name)
    if not repository or "@" in name:
        raise PushError(f"{given}: push needs a NAME[:TAG] in the local Docker engine, not a digest")
    return Target(repository, tag or "latest")


class EnginePusher:
    """Pushes with the local engine: its credentials (~/.docker/config.json, helpers) unless
    --username/--password-stdin were given; its insecure-registry rules."""

    def __init__(self, registry: RegistryOptions = RegistryOptions(),
                 client_factory: Callable[[], Any] = engine_client) -> None:
        self.registry = registry
        self.client_factory = client_factory

    def image_id(self, target: Target) -> str:
        import docker

        client = self.client_factory()
        try:
            return client.images.get(target.name).id
        except docker.errors.ImageNotFound:
            raise PushError(f"{target.name}: no such image in the Docker engine") from None
        except docker.errors.DockerException as exc:
            raise PushError(f"{target.name}: the Docker engine failed ({_first_line(exc)})") from None
        finally:
            client.close()

    def push(self, target: Target, scanned_id: str) -> Optional[str]:
        """Push `target` if it is still the image scanned; the manifest digest the registry got."""
        self._same(target, scanned_id, "while it was scanned: not pushed")
        digest = self._push(target)
        self._same(target, scanned_id, "during the push: what was pushed may not be what was scanned")
        return digest

    def _same(self, target: Target, scanned_id: str, when: str) -> None:
        now = self.image_id(target)
        if now != scanned_id:
            raise PushError(f"{target.name} changed in the Docker engine {when} "
                            f"(scanned {scanned_id[:19]}, now {now[:19]})")

    def _push(self, target: Target) -> Optional[str]:
        import docker

        auth = None
        if self.registry.username and self.registry.password is not None:
            auth = {"username": self.registry.username, "password": self.registry.password}
        client = self.client_factory()
        digest = None
        try:
            for event in client.api.push(target.repository, tag=target.tag, stream=True, decode=True,
                                         auth_config=auth):
                if event.get("error") or event.get("errorDetail"):
                    why = event.get("error") or event["errorDetail"].get("message", "unknown error")
                    raise PushError(f"{target.name}: push failed: {_first_line(why)}")
                digest = (event.get("aux") or {}).get("Digest", digest)
        except docker.errors.DockerException as exc:
            raise PushError(f"{target.name}: push failed: {_first_line(exc)}") from None
        finally:
            client.close()
        return digest


def _first_line(what: object) -> str:
    text = str(what).strip()
    return text.splitlines()[0][:300] if text else what.__class__.__name__
