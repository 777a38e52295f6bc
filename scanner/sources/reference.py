"""Image references as Docker reads them: `alpine` is `docker.io/library/alpine:latest`.

The grammar is the one of distribution/reference (what `docker pull` accepts):
  [DOMAIN/]PATH[:TAG][@DIGEST]
DOMAIN is the first `/` component when it has a `.` or a `:`, is `localhost`, or has upper
case letters; otherwise the name is on Docker Hub (`docker.io`), and a one-component name there
lives under `library/`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from scanner.sources.interface import SourceError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's registry API answers
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    domain: str  # "docker.io", "ghcr.io", "127.0.0.1:5000"
    path: str  # "library/alpine", "team/app"
    tag: Optional[str] = None  # None only when a digest is given
    digest: Optional[str] = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def ref(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest if there is one."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    def __str__(self) -> str:
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        """Docker's short form, as `docker images` prints it: `alpine:latest`, `team/app:1`."""
        if self.domain != DOCKER_HUB:
            return str(self)
        single = self.path.startswith("library/") and self.path.count("/") == 1
        return (self.path[len("library/"):] if single else self.path) + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str) -> Reference:
    """`text` as a normalised Reference; SourceError naming what is wrong with it."""
    ref = try_reference(text)
    if ref is None:
        raise SourceError(f"{text!r}: not a valid image reference (expected [REGISTRY/]NAME[:TAG][@DIGEST])")
    return ref


def try_reference(text: str) -> Optional[Reference]:
    """The Reference `text` names, or None when it is not one."""
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            return None
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            return None
    domain, path = _split_domain(rest)
    if domain is None or not _PATH.match(path) or len(f"{domain}/{path}") > MAX_NAME:
        return None
    if digest is None and tag is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[Optional[str], str]:
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        if not _DOMAIN.match(first):
            return None, name
        domain, path = first, remainder
    else:
        domain, path = DOCKER_HUB, name
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    return domain, path
