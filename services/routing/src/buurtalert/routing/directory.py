"""The directory of groups: loaded from a YAML file per municipality, kept in MongoDB."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.shared.yamlfile import load_yaml

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


def load_directory(path: Path) -> Directory:
    """The directory file; raises :class:`ConfigFileError` naming the line of each problem."""
    return load_yaml(path, Directory)


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
