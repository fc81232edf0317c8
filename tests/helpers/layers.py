"""An image's layers as `docker save` writes them, and what differs between two images, file by file."""

import hashlib
import io
import json
import stat
import subprocess
import tarfile
from dataclasses import dataclass

# What useradd/adduser must write to add one account: every image that makes a user holds these
# (and their "-" backups) again in its own layer, so they are counted apart from any other waste.
ACCOUNT_FILES = {"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/.pwd.lock"}


def is_account_file(path: str) -> bool:
    return path.rstrip("-") in ACCOUNT_FILES


# A layer entry: mode (with the file's type, for stat.S_ISDIR), owner, group, mtime, size, and the
# content's SHA-256 (or a link's target).
Entry = tuple[int, int, int, int, int, str]


@dataclass
class Layer:
    digest: str
    entries: dict[str, Entry]


def layers(image: str) -> list[Layer]:
    """The image's layers, bottom first, each with its uncompressed digest and its entries."""
    saved = subprocess.run(["docker", "save", image], capture_output=True, check=True, timeout=600).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        result = []
        for name in manifest["Layers"]:
            blob = outer.extractfile(name).read()
            entries = {}
            with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                for member in layer:
                    content = layer.extractfile(member).read() if member.isfile() else member.linkname.encode()
                    kind = stat.S_IFDIR if member.isdir() else stat.S_IFLNK if member.issym() else stat.S_IFREG
                    entries[member.name] = (member.mode | kind, member.uid, member.gid, member.mtime, member.size,
                                            hashlib.sha256(content).hexdigest())  # fmt: skip
            result.append(Layer(hashlib.sha256(blob).hexdigest(), entries))
    return result


def differences(first: str, second: str, shown: int = 10) -> tuple[int, int, list[str]]:
    """Identical layers, all layers, and for each layer that differs the entries that do (up to `shown`)."""
    ours, theirs = layers(first), layers(second)
    same = sum(a.digest == b.digest for a, b in zip(ours, theirs, strict=False))
    report = []
    if len(ours) != len(theirs):
        report.append(f"{len(ours)} layers against {len(theirs)}")
    for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a.digest == b.digest:
            continue
        names = sorted(
            name for name in a.entries.keys() | b.entries.keys() if a.entries.get(name) != b.entries.get(name)
        )
        report.append(f"layer {index}: {len(names)} entries differ (mode, uid, gid, mtime, size, sha256):")
        report += [f"  {name}: {a.entries.get(name)} | {b.entries.get(name)}" for name in names[:shown]]
    return same, len(ours), report
