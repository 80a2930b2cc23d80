"""buurtalert moderation: scores each message and forwards, holds or rejects it."""
