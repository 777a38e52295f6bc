"""What a verifier is: it builds one read-only request for a secret, then judges the answer."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Optional

from scanner.errors import LayerscanError

LIVE, INVALID, UNKNOWN, ERROR = "live", "invalid", "unknown", "error"


class VerifyError(LayerscanError):
    """Bad verifier data or option, or a call that could not be made. Never holds a secret."""


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Optional[bytes] = None
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values every message is scrubbed of


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass(frozen=True)
class Credential:
    """The found value, the value of the finding it pairs with (`pair` of the data), and the
    fields a verifier derives from them (Mailchimp's data centre)."""

    secret: str = field(repr=False)
    partner: Optional[str] = field(default=None, repr=False)


class Verifier(abc.ABC):
    id: str  # unique, e.g. "github"
    provider: str  # what --verify-endpoint and --verify-rps name
    rules: tuple[str, ...]  # rule ids whose findings it checks
    pair: Optional[str] = None  # rule id of the finding it needs from the same place (AWS key id)
    docs: str = ""

    @abc.abstractmethod
    def hosts(self) -> list[str]:
        """The documented hosts it may call (`layerscan verify --list-endpoints`)."""

    @abc.abstractmethod
    def request(self, credential: Credential, base: Optional[str]) -> Request:
        """The one read-only request; `base` replaces scheme://host[:port] (--verify-endpoint).
        VerifyError when the credential does not fit (no data centre in a Mailchimp key)."""

    @abc.abstractmethod
    def judge(self, answer: Answer) -> tuple[str, str]:
        """(status, detail) of an answer: live, invalid or unknown; detail never holds a secret."""

    def canary(self, credential: Credential) -> bool:
        """A known canary token: never called."""
        return False
