"""buurtalert's development kit: local stand-ins for what production reaches outside
(Meta's Graph API, a mail provider), and the helpers that give tests and benchmarks
real infrastructure. Production services never depend on it."""
