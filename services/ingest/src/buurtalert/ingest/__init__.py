"""buurtalert ingest: turns reports from every channel into canonical messages on
``messages.inbound``; what it cannot accept goes to ``ingest.quarantine``."""
