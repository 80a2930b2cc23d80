"""buurtalert's common library.

Import from the modules: ``buurtalert.shared.models`` (the records),
``.topics`` (the topology), ``.settings``, ``.logging``, ``.kafka`` (broker and the
retry path), ``.mongo`` (database, audit, idempotency), ``.pseudonym``, and
``.channels`` (the adapter interface partners build on).
"""
