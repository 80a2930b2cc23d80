"""Attachments and media: names that are safe to keep, types sniffed from the bytes."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

_UNSAFE = re.compile(r"[^\w.\- ]+")

# The first bytes of the formats members send; declared types are never trusted.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
)


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """The last path component of ``name``, without control characters, path
    separators or leading dots, at most 100 characters: ``../../etc/passwd`` is ``passwd``."""
    name = unicodedata.normalize("NFC", name)
    name = PureWindowsPath(PurePosixPath(name.replace("\x00", "")).name).name
    name = _UNSAFE.sub("_", name).strip(" ._")
    if len(name) > 100:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 100 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:100]
    return name or fallback


def sniff(data: bytes) -> str:
    """The type the bytes say they are; RIFF, ISO media and text are told apart too."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    try:  # a cut through a multi-byte character at the end is not a defect
        codecs.getincrementaldecoder("utf-8")().decode(data[:4096], final=False)
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"
