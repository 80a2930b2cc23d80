"""Ingest's parsers: one module per provider (``whatsapp``, ``facebook``, ``email``,
``web``) and what they share (``common``, ``mediafiles``). Pure: bytes
in, a :class:`~buurtalert.ingest.parsers.common.Batch` or
:class:`~buurtalert.ingest.parsers.common.InvalidInput` out, no I/O, so the service
and ``buurtalert ingest parse`` run the same code."""
