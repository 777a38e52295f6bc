"""AWS: STS GetCallerIdentity, signed with Signature Version 4 (hashlib/hmac, as AWS specifies it:
https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html). The call needs no
permission and changes nothing; it answers the account, the user or role ARN.

The access key id says the account it belongs to (base32 after its 4-letter prefix): keys of the
known canary accounts (Thinkst canarytokens.org) are marked and never called.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import urllib.parse
from typing import Optional

from scanner.verify.interface import INVALID, LIVE, UNKNOWN, Answer, Credential, Request, Verifier, VerifyError

URL = "https://sts.amazonaws.com/"
BODY = "Action=GetCallerIdentity&Version=2011-06-15"
REGION, SERVICE = "us-east-1", "sts"
_KEY_ID = re.compile(r"^(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}$")


def account_of(key_id: str) -> Optional[str]:
    """The 12-digit account id an access key id encodes, or None when it is not one."""
    if not _KEY_ID.match(key_id):
        return None
    raw = base64.b32decode(key_id[4:])
    return f"{(int.from_bytes(raw[:6], 'big') & 0x7FFFFFFFFF80) >> 7:012d}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    return _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), region), service), "aws4_request")


def signature(secret: str, method: str, query: str, headers: dict[str, str], payload: bytes, amz_date: str,
              region: str = REGION, service: str = SERVICE) -> str:
    """SigV4 of a request to path `/` (headers by lower-case name, all signed)."""
    names = sorted(headers)
    canonical = "\n".join([method, "/", query, *(f"{k}:{headers[k]}" for k in names), "", ";".join(names),
                           hashlib.sha256(payload).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    return hmac.new(signing_key(secret, amz_date[:8], region, service), to_sign.encode(), hashlib.sha256).hexdigest()


def sign(key_id: str, secret: str, host: str, body: str, now: datetime.datetime) -> dict[str, str]:
    """The headers of a SigV4-signed `POST /` of a form body to STS."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": host,
               "x-amz-date": amz_date}
    sig = signature(secret, "POST", "", headers, body.encode(), amz_date)
    scope = f"{amz_date[:8]}/{REGION}/{SERVICE}/aws4_request"
    return {"Content-Type": headers["content-type"], "X-Amz-Date": amz_date, "Accept": "application/json",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, "
                             f"SignedHeaders={';'.join(sorted(headers))}, Signature={sig}"}


class AwsVerifier(Verifier):
    def __init__(self, data: dict) -> None:
        self.id, self.provider = str(data["id"]), str(data.get("provider") or "aws")
        self.rules = tuple(data["rules"])
        self.pair = str(data["pair"])
        self.docs = str(data.get("docs") or "")
        self.canaries = frozenset(str(a) for a in data.get("canary_accounts") or ())
        if not all(len(a) == 12 and a.isdigit() for a in self.canaries):
            raise VerifyError(f"{self.id}: canary_accounts are 12-digit strings (quoted: a leading 0 reads as octal)")

    def hosts(self) -> list[str]:
        return [urllib.parse.urlsplit(URL).hostname or ""]

    def canary(self, credential: Credential) -> bool:
        return account_of(credential.partner or "") in self.canaries

    def request(self, credential: Credential, base: Optional[str]) -> Request:
        key_id = credential.partner or ""
        if account_of(key_id) is None:
            raise VerifyError("the paired value is not an AWS access key id")
        url = base.rstrip("/") + "/" if base else URL
        host = urllib.parse.urlsplit(url).netloc
        now = datetime.datetime.now(datetime.timezone.utc)
        headers = sign(key_id, credential.secret, host, BODY, now)
        return Request("POST", url, headers, BODY.encode(), (credential.secret,))

    def judge(self, answer: Answer) -> tuple[str, str]:
        text = answer.body.decode("utf-8", "replace")
        if answer.status == 200:
            arn = re.search(r'"Arn"\s*:\s*"([^"]{1,200})"|<Arn>([^<]{1,200})</Arn>', text)
            return LIVE, (arn.group(1) or arn.group(2)) if arn else ""
        if answer.status == 403 and re.search(r"InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken", text):
            code = re.search(r"InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken", text)
            return INVALID, code.group(0) if code else ""
        return UNKNOWN, f"HTTP {answer.status}"
