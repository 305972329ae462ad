"""The Skills extension (``io.modelcontextprotocol/skills``, SEP-2640): a folder of
instructions and files an app publishes, served as ``skill://`` resources.

``app.skill("path/to/pdf-processing")`` reads a skill directory once (its ``SKILL.md``
with YAML frontmatter naming it, and every file below it) and publishes:

- each file as a resource ``skill://<skill-path>/<file>`` (``SKILL.md`` listed in
  ``resources/list`` with its frontmatter's name and description, as ``text/markdown``);
- the skill's entry for ``skills/list`` and ``skills/get``: its ``SKILL.md`` URI, the
  frontmatter (as JSON), and every file with its SHA-256 digest and size in bytes,
  computed over exactly the bytes ``resources/read`` returns;
- its folders for ``resources/directory/read`` (direct children; a folder is
  ``inode/directory``).

Frontmatter is read as YAML 1.2 (ruamel.yaml, pure Python, so it loads on Workers too),
the YAML version clients parse it with; a date stays the string it is written as.
"""

from __future__ import annotations

import datetime
import hashlib
import mimetypes
import re
from pathlib import Path
from typing import Any

#: The skill name rules: lower-case letters, digits and single hyphens, at most 64.
NAME_RULE = re.compile(r"(?!.*--)[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?")
#: The limits a skill should keep within (SEP-2640): files, and bytes in all.
MAX_FILES = 512
MAX_BYTES = 16 * 1024 * 1024
DIRECTORY = "inode/directory"


class SkillFile:
    __slots__ = ("uri", "name", "data", "mime_type", "digest", "text")

    def __init__(self, uri: str, name: str, data: bytes, mime_type: str):
        self.uri = uri
        self.name = name
        self.data = data
        self.mime_type = mime_type
        self.digest = "sha256:" + hashlib.sha256(data).hexdigest()
        try:
            self.text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            self.text = None

    def entry(self) -> dict:
        return {"uri": self.uri, "digest": self.digest, "size": len(self.data)}


class Skill:
    """One published skill (see the module doc)."""

    __slots__ = ("uri", "root", "name", "frontmatter", "files", "folders")

    def __init__(self, root: str, frontmatter: dict, files: list[SkillFile], folders: dict[str, list[dict]]):
        self.root = root
        self.uri = f"{root}/SKILL.md"
        self.name = frontmatter["name"]
        self.frontmatter = frontmatter
        self.files = files
        self.folders = folders

    def entry(self) -> dict:
        return {"uri": self.uri, "frontmatter": self.frontmatter, "resources": [f.entry() for f in self.files]}


def _plain(value: Any) -> Any:
    """YAML values as JSON: dates as the strings they were written as."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def frontmatter(text: str) -> dict:
    """The YAML frontmatter of a SKILL.md (between ``---`` lines at its top)."""
    from ruamel.yaml import YAML  # only when an app publishes skills

    body = text.lstrip("\ufeff")
    m = re.match(r"---\r?\n(.*?)\r?\n---\r?\n?", body, re.S)
    if m is None:
        raise ValueError("SKILL.md must open with YAML frontmatter between '---' lines")
    data = YAML(typ="safe", pure=True).load(m.group(1))
    if not isinstance(data, dict):
        raise ValueError("SKILL.md frontmatter must be a YAML mapping")
    data = _plain(data)
    for field in ("name", "description"):
        if not isinstance(data.get(field), str) or not data[field].strip():
            raise ValueError(f"SKILL.md frontmatter needs a non-empty {field!r}")
    return data


def load(directory: str | Path, prefix: str = "") -> Skill:
    """Read a skill directory. ``prefix``: path segments before the skill's own name in its
    URIs (``skill://acme/billing/<name>/...``); the last segment is always the name."""
    folder = Path(directory)
    skill_md = folder / "SKILL.md"
    if not skill_md.is_file():
        raise ValueError(f"{folder}: a skill directory needs a SKILL.md")
    meta = frontmatter(skill_md.read_bytes().decode("utf-8"))
    name = meta["name"]
    if not NAME_RULE.fullmatch(name):
        raise ValueError(f"skill name {name!r}: use lower-case letters, digits and single hyphens (at most 64)")
    segments = [s for s in prefix.strip("/").split("/") if s] + [name]
    root = "skill://" + "/".join(segments)
    files: list[SkillFile] = []
    folders: dict[str, list[dict]] = {root: []}
    total = 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # hidden files and folders are not part of a skill
        uri = f"{root}/{relative.as_posix()}"
        parent = uri.rsplit("/", 1)[0]
        if path.is_dir():
            folders[uri] = []
            folders.setdefault(parent, []).append({"uri": uri, "name": path.name, "mimeType": DIRECTORY})
            continue
        data = path.read_bytes()
        total += len(data)
        mime = "text/markdown" if path.suffix == ".md" else mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        file = SkillFile(uri, path.name, data, mime)
        files.append(file)
        folders.setdefault(parent, []).append({"uri": uri, "name": path.name, "mimeType": mime})
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise ValueError(f"skill {name!r}: {len(files)} files, {total} bytes; a skill should keep within "
                         f"{MAX_FILES} files and {MAX_BYTES} bytes")
    files.sort(key=lambda f: (f.uri != f"{root}/SKILL.md", f.uri))  # SKILL.md first
    return Skill(root, meta, files, folders)
