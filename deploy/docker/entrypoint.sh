#!/bin/sh
# The images' entry point: no arguments runs the image's service (BUURTALERT_SERVICE); any
# arguments go to the buurtalert command (topics create, directory load, ...).
set -eu
if [ "$#" -eq 0 ]; then
  set -- run "${BUURTALERT_SERVICE:?BUURTALERT_SERVICE is not set}"
fi
exec buurtalert "$@"
