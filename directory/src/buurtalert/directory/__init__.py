"""The directory: districts, groups, members, cross-border agreements and escalation
targets of each municipality (:mod:`.model`, free of I/O), kept in MongoDB with the
membership register on top (:mod:`.store`), and the ``buurtalert directory`` commands."""
