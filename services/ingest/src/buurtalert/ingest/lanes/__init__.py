"""Ingest's lanes: the I/O that receives input (``http``: Meta's webhooks and web
reports; ``smtp``; ``imap``) and hands it to :meth:`Intake.take
<buurtalert.ingest.accept.Intake.take>`, then translates the outcome into its
protocol; and ``media``, which fetches WhatsApp media after a message was accepted."""
