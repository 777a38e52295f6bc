"""Distro package databases: what each distro package installed, file by file, with the digest of
each file as the package shipped it, and the package's name (and version where the database says).
Triage (`scanner.triage`) marks a finding `vendor` when its file is byte-identical to that.

| manager | file(s) | digest |
|---|---|---|
| dpkg | `/var/lib/dpkg/info/*.md5sums`, distroless `/var/lib/dpkg/status.d/*.md5sums` | md5 |
| dpkg | `/var/lib/dpkg/status` and `status.d/*` `Conffiles:` (unmodified configuration files) | md5 |
| apk | `/lib/apk/db/installed` (`R:` name, `Z:Q1` base64 sha1) | sha1 |
| rpm | `rpmdb.sqlite` (Fedora 33+, RHEL/UBI 9) under `/var/lib/rpm` or `/usr/lib/sysimage/rpm` | per header |

Not read: rpm's Berkeley DB (`Packages`) and NDB (`Packages.db`) formats.
"""
from __future__ import annotations

import base64
import binascii
import posixpath
import re
import sqlite3
import struct
from typing import Iterator, Optional

from scanner.models import PackageDb
from scanner.packages.records import Writer

MAX_PACKAGE_DB = 256 << 20  # a larger database file is scanned like any file, not read for triage

_DPKG_MD5SUMS = re.compile(r"^/var/lib/dpkg/(?:info|status\.d)/[^/]+\.md5sums$")
_DPKG_STATUS = re.compile(r"^/var/lib/dpkg/(?:status|status\.d/[^/]+)$")
_APK = re.compile(r"^/(?:usr/)?lib/apk/db/installed$")
_RPM_SQLITE = re.compile(r"^/(?:var/lib/rpm|usr/lib/sysimage/rpm)/rpmdb\.sqlite$")
_HEX = re.compile(r"^[0-9a-f]+$")
_DB_DIRS = ("/var/lib/", "/lib/apk/", "/usr/lib/")  # where every database above lies
BASENAMES = ("status", "installed", "rpmdb.sqlite")  # and any `*.md5sums`, `status.d/*`: see `is_distro_db`


def is_distro_db(path: str) -> bool:
    return path.startswith(_DB_DIRS) and bool(_DPKG_MD5SUMS.match(path) or _DPKG_STATUS.match(path)
                                               or _APK.match(path) or _RPM_SQLITE.match(path))


def read_distro_db(path: str, data: bytes) -> Optional[PackageDb]:
    """The file's records as `PackageDb`, or None when it is not one."""
    out = Writer()
    if _DPKG_MD5SUMS.match(path):
        _dpkg_md5sums(path, data, out)
    elif _DPKG_STATUS.match(path):
        _dpkg_status(data, out)
    elif _APK.match(path):
        _apk_installed(data, out)
    elif _RPM_SQLITE.match(path):
        _rpm_sqlite(data, out)
    else:
        return None
    manager = "apk" if _APK.match(path) else "rpm" if _RPM_SQLITE.match(path) else "dpkg"
    return PackageDb(path, manager, out.text())


# merged /usr: a package may list /lib/x or /usr/lib/x for the file a tar holds at the other one
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")
# where distro packages put files (FHS): not /usr/local, /home, /root, /tmp or an application's own
# tree (/app, /srv, /workspace), which pip, npm and the image's own build fill
_PACKAGED = ("/usr/", "/etc/", "/opt/", "/var/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/",
             "/boot/")
_NOT_PACKAGED = ("/usr/local/", "/var/tmp/")


def may_be_packaged(path: str) -> bool:
    """Whether a package manager could have installed the file at `path`: where the walk needs
    the md5 dpkg records of a file too large to keep (hashed as it streams, before its hits are
    known; md5 is the costliest of the hashes). A file elsewhere that a database lists after all
    is not marked `vendor`: reported, never hidden."""
    return path.startswith(_PACKAGED) and not path.startswith(_NOT_PACKAGED)


def canonical(path: str) -> str:
    """The path a merged-/usr system gives a file (`/lib/x` and `/usr/lib/x` are one file)."""
    return "/usr" + path if path.startswith(_MERGED) else path


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _dpkg_md5sums(path: str, data: bytes, out: Writer) -> None:
    name = posixpath.basename(path)[:-len(".md5sums")].split(":", 1)[0]  # libc6:amd64.md5sums
    out.package(name, "", f"dpkg:{name}")
    for line in _text(data).splitlines():
        digest, _, file = line.partition(" ")
        file = file.lstrip(" ")
        if len(digest) == 32 and _HEX.match(digest) and file:
            out.digest("md5", digest, "/" + file.lstrip("/"))


def _stanzas(data: bytes) -> Iterator[list[str]]:
    lines: list[str] = []
    for line in _text(data).splitlines():
        if not line.strip():
            if lines:
                yield lines
            lines = []
        else:
            lines.append(line)
    if lines:
        yield lines


def _dpkg_status(data: bytes, out: Writer) -> None:
    """Each stanza's package and version, and the ` /etc/x <md5> [obsolete]` lines under `Conffiles:`."""
    for stanza in _stanzas(data):
        fields = dict(line.split(":", 1) for line in stanza if ":" in line and not line[0].isspace())
        name = fields.get("Package", "").strip()
        out.package(name, fields.get("Version", "").strip(), f"dpkg:{name}")
        inside = False
        for line in stanza:
            if not line.startswith((" ", "\t")):
                inside = line.startswith("Conffiles:")
                continue
            parts = line.split()
            if inside and len(parts) >= 2 and len(parts[1]) == 32 and _HEX.match(parts[1]):
                out.digest("md5", parts[1], parts[0])


def _apk_installed(data: bytes, out: Writer) -> None:
    """Per stanza: `P:` name, `V:` version; `F:` directory, `R:` file name, then `Z:Q1<base64 sha1>`."""
    for stanza in _stanzas(data):
        fields = {line[:1]: line[2:] for line in stanza if line[1:2] == ":" and line[:1] in "PV"}
        out.package(fields.get("P", ""), fields.get("V", ""), f"apk:{fields.get('P', '')}")
        folder = name = ""
        for line in stanza:
            key, _, value = line.partition(":")
            if key == "F":
                folder, name = value.strip("/"), ""
            elif key == "R":
                name = value
            elif key == "Z" and name and value.startswith("Q1"):
                try:
                    sha1 = base64.b64decode(value[2:], validate=True).hex()
                except (binascii.Error, ValueError):
                    continue
                out.digest("sha1", sha1, "/" + "/".join(p for p in (folder, name) if p))
                name = ""


# --- rpm -------------------------------------------------------------------------------------

_NAMES, _DIRINDEXES, _BASENAMES, _DIRNAMES, _DIGESTS, _OLDNAMES, _ALGO = 1000, 1116, 1117, 1118, 1035, 1027, 5011
_VERSION, _RELEASE = 1001, 1002
_RPM_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


def _rpm_sqlite(data: bytes, out: Writer) -> None:
    """Every package header of an rpmdb.sqlite, read in memory (never written to disk)."""
    con = sqlite3.connect(":memory:")
    try:
        if not hasattr(con, "deserialize"):  # Python < 3.11: no in-memory opening
            return
        con.deserialize(data)
        rows = con.execute("SELECT blob FROM Packages").fetchall()
    except sqlite3.Error:
        return
    finally:
        con.close()
    for (blob,) in rows:
        if isinstance(blob, bytes):
            try:
                tags = _rpm_tags(blob)
            except struct.error:
                continue
            name, version, release = (next(iter(tags.get(t, [])), "") for t in (_NAMES, _VERSION, _RELEASE))
            name = name if isinstance(name, str) else ""
            out.package(name, f"{version}-{release}" if isinstance(version, str) and isinstance(release, str)
                        and release else version, f"rpm:{name}")
            for digest, path in rpm_header_files(blob, tags):
                algo, _, hexdigest = digest.partition(":")
                out.digest(algo, hexdigest, path)


def rpm_header_files(blob: bytes, tags: Optional[dict[int, list]] = None) -> Iterator[tuple[str, str]]:
    """("algo:hex", path) of each file an rpm header lists with a digest; nothing if malformed."""
    try:
        tags = _rpm_tags(blob) if tags is None else tags
        algo = _RPM_ALGOS.get(tags[_ALGO][0] if _ALGO in tags else 1)
        digests = tags.get(_DIGESTS, [])
        if _BASENAMES in tags:
            dirs, index = tags[_DIRNAMES], tags[_DIRINDEXES]
            paths = [dirs[index[i]] + base for i, base in enumerate(tags[_BASENAMES])]
        else:
            paths = tags.get(_OLDNAMES, [])
    except (KeyError, IndexError, TypeError, struct.error):
        return
    if algo is None:
        return
    for path, digest in zip(paths, digests):
        if isinstance(path, str) and isinstance(digest, str) and digest and _HEX.match(digest):
            yield f"{algo}:{digest}", path


def _rpm_tags(blob: bytes) -> dict[int, list]:
    """The string-array and int32 tags of a header blob (il, dl, index entries, data store)."""
    if len(blob) < 8:
        return {}
    il, dl = struct.unpack(">II", blob[:8])
    store = 8 + 16 * il
    if il > 100_000 or store + dl > len(blob):
        return {}
    wanted = {_NAMES, _VERSION, _RELEASE, _DIRINDEXES, _BASENAMES, _DIRNAMES, _DIGESTS, _OLDNAMES, _ALGO}
    out: dict[int, list] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack(">IIII", blob[8 + 16 * i:24 + 16 * i])
        if tag not in wanted or offset > dl or count > 10_000_000:
            continue
        at = store + offset
        if kind == 4:  # INT32 array
            out[tag] = list(struct.unpack(f">{count}I", blob[at:at + 4 * count]))
        elif kind in (6, 8, 9):  # STRING, STRING_ARRAY, I18NSTRING
            out[tag] = _strings(blob, at, store + dl, count)
    return out


def _strings(blob: bytes, at: int, end: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        stop = blob.find(b"\0", at, end)
        if stop < 0:
            break
        out.append(blob[at:stop].decode("utf-8", "surrogateescape"))
        at = stop + 1
    return out
