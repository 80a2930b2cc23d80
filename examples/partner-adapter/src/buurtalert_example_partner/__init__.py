"""An example partner adapter: see README.md beside this package."""
