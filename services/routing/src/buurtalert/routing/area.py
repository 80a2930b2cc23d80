"""Which districts an authority alert's target area covers (shapely geometry)."""

from __future__ import annotations

import math

from shapely import affinity
from shapely.geometry import Point, Polygon, shape
from shapely.geometry.base import BaseGeometry

from buurtalert.directory.model import Directory
from buurtalert.shared.models import TargetArea

METRES_PER_DEGREE_LATITUDE = 111_320.0


def _circle(latitude: float, longitude: float, radius_m: float) -> BaseGeometry:
    """A circle on the ground as an ellipse in degrees (exact enough for a district)."""
    dlat = radius_m / METRES_PER_DEGREE_LATITUDE
    dlon = radius_m / (METRES_PER_DEGREE_LATITUDE * max(math.cos(math.radians(latitude)), 1e-6))
    return affinity.scale(Point(longitude, latitude).buffer(1.0, 64), xfact=dlon, yfact=dlat)


def area_shape(target: TargetArea) -> BaseGeometry | None:
    if target.polygon is not None:
        return Polygon(target.polygon)
    if target.center is not None and target.radius_m is not None:
        return _circle(target.center.latitude, target.center.longitude, target.radius_m)
    return None


def districts_in(target: TargetArea, directory: Directory) -> tuple[list[str], list[str]]:
    """The districts the target covers, and notes on what could not be matched."""
    known = {d.id for d in directory.districts}
    chosen = [d for d in target.districts if d in known]
    notes = [f"unknown_district:{d}" for d in target.districts if d not in known]
    area = area_shape(target)
    if area is not None:
        for district in directory.districts:
            if district.geometry is None:
                notes.append(f"district_without_geometry:{district.id}")
            elif district.id not in chosen and shape(district.geometry).intersects(area):
                chosen.append(district.id)
    return chosen, notes
