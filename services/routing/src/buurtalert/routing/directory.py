"""The directory of groups: loaded from a YAML file per municipality, kept in MongoDB."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


class GroupKind(StrEnum):
    BUURTGROEP = "buurtgroep"
    REGIEGROEP = "regiegroep"


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    kind: GroupKind
    district: str
    channel: str = Field(description="The channel adapter that reaches this group")
    address: str = Field(description="The channel address: a list address, a WhatsApp group id")


class Directory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    municipality: str
    groups: tuple[Group, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> Directory:
        ids = [g.id for g in self.groups]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"group ids must be unique; repeated: {', '.join(dupes)}")
        return self


class DirectoryError(ValueError):
    pass


def load_directory(path: Path) -> Directory:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DirectoryError(f"{path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Directory.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise DirectoryError(f"{path}: " + "; ".join(lines)) from exc


async def store_directory(db: AsyncDatabase[Document], directory: Directory) -> int:
    """Upsert every group; loading the same file twice changes nothing."""
    for group in directory.groups:
        await db.groups.replace_one(
            {"_id": group.id},
            {"_id": group.id, "municipality": directory.municipality, **group.model_dump(mode="json")},
            upsert=True,
        )
    return len(directory.groups)


def group_from_document(doc: Document) -> Group:
    return Group.model_validate({k: v for k, v in doc.items() if k not in ("_id", "municipality")})


async def groups_for(db: AsyncDatabase[Document], municipality: str, group_id: str) -> list[Group]:
    """The sender's group and every group of its district: what the rules need."""
    sender = await db.groups.find_one({"_id": group_id, "municipality": municipality})
    if sender is None:
        return []
    cursor = db.groups.find({"municipality": municipality, "district": sender["district"]})
    return [group_from_document(doc) async for doc in cursor]
