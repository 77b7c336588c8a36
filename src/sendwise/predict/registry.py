"""The model registry: one folder per model, one sub-folder per version.

    models/<name>/v0001/   metadata.json, card.md, report.md, the model files, plots
    models/<name>/promoted.json   {"version": "v0001", "promoted_at": ...}

Model files are LightGBM text or JSON; nothing is ever unpickled. ``metadata.json`` lists the
SHA-256 of every file, checked on load, so that a file changed after training is refused.
Only a version that passed the quality gate is promoted; scoring uses the promoted version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sendwise.errors import InputError, NotFoundError, SendwiseError

VERSION = re.compile(r"^v(\d{4,})$")


class ModelError(SendwiseError):
    """A model file is missing, changed after training, or does not fit the data."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    folder: Path
    metadata: dict[str, Any]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir() if p.is_dir() and VERSION.match(p.name)]
        found = [v for v in found if (folder / v / "metadata.json").exists()]
        return sorted(found, key=lambda v: int(v[1:]))

    def new_folder(self, name: str) -> tuple[str, Path]:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise InputError(f"model names are lower-case words, not {name!r}")
        existing = [p.name for p in (self.root / name).glob("v*") if VERSION.match(p.name)]
        number = max((int(v[1:]) for v in existing), default=0) + 1
        version = f"v{number:04d}"
        folder = self.root / name / version
        folder.mkdir(parents=True)
        return version, folder

    def seal(self, folder: Path, metadata: dict[str, Any]) -> None:
        """Write metadata.json last, with the hash of every other file in the folder."""
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "metadata.json")
        metadata["files"] = {p.name: sha256(p) for p in files}
        tmp = folder / "metadata.json.tmp"
        tmp.write_text(json.dumps(metadata, indent=2, default=str))
        tmp.replace(folder / "metadata.json")

    def promote(self, name: str, version: str) -> None:
        if version not in self.versions(name):
            raise NotFoundError("model version", f"{name} {version}", "see `sendwise models list`")
        data = {"version": version, "promoted_at": datetime.now(UTC).isoformat()}
        tmp = self.root / name / "promoted.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.root / name / "promoted.json")

    def promoted(self, name: str) -> str | None:
        path = self.root / name / "promoted.json"
        if not path.exists():
            return None
        return json.loads(path.read_text()).get("version")

    def get(self, name: str, version: str | None = None, *, verify: bool = True) -> ModelVersion:
        version = version or self.promoted(name)
        if version is None:
            hint = (
                "no version passed the quality gate yet; see `sendwise models show`"
                if self.versions(name)
                else "train it with `sendwise train`"
            )
            raise NotFoundError("promoted model", name, hint)
        folder = self.root / name / version
        meta_path = folder / "metadata.json"
        if not meta_path.exists():
            raise NotFoundError("model version", f"{name} {version}", "see `sendwise models list`")
        metadata = json.loads(meta_path.read_text())
        if verify:
            for file, digest in metadata.get("files", {}).items():
                path = folder / file
                if not path.exists() or sha256(path) != digest:
                    raise ModelError(
                        f"model {name} {version}: {file} is missing or was changed after"
                        " training; retrain with `sendwise train`"
                    )
        return ModelVersion(name, version, folder, metadata)

    def latest(self, name: str) -> ModelVersion:
        versions = self.versions(name)
        if not versions:
            raise NotFoundError("model", name, "train it with `sendwise train`")
        return self.get(name, versions[-1], verify=False)

    def write_extra(self, mv: ModelVersion, file: str, data: Any) -> None:
        """Files written after sealing (drift of later scorings): not part of the hash list."""
        (mv.folder / file).write_text(json.dumps(data, indent=2, default=str))


def check_features(mv: ModelVersion, types: dict[str, str]) -> None:
    """Refuse to score when the model's features are missing or changed type."""
    wanted: dict[str, str] = mv.metadata.get("feature_types", {})
    missing = [f for f in wanted if f not in types]
    changed = [
        f"{f} ({wanted[f]} -> {types[f]})"
        for f in wanted
        if f in types and not _compatible(wanted[f], types[f])
    ]
    if missing or changed:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if changed:
            parts.append(f"changed type {', '.join(changed[:5])}")
        raise ModelError(
            f"model {mv.name} {mv.version} does not fit today's features: {'; '.join(parts)}."
            " Retrain it with `sendwise train`."
        )


def _compatible(a: str, b: str) -> bool:
    numeric = {"int", "float", "bool"}
    return a == b or (a in numeric and b in numeric and "bool" not in (a, b))
