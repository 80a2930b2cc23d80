"""buurtalert benchmarks (``make bench``): each figure is reported with a baseline
measured in the same run on the same broker, and their ratio."""
