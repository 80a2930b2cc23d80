"""Unpack the Kubernetes JSON schemas of one Kubernetes version for kubeconform, offline.

kubeconform fetches its schemas from the network by default; here there is none. The PyPI
package kubernetes-validate (Apache-2.0) ships the schemas of every recent Kubernetes version,
generated from its OpenAPI document. This takes one version's strict schemas from its wheel and
writes them where kubeconform's -schema-location template finds them:

    OUT/v<version>-standalone-strict/<kind>-<group>-<version>.json

Each schema refers to the shared _definitions.json by an absolute URL under kubernetes.io; the
reference is made relative (and the $id dropped) so that it resolves to the file beside it.

    python3 deploy/helm/k8s_schemas.py WHEEL 1.33.0 OUT
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

PREFIX = "kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"


def _relative(node: object) -> object:
    if isinstance(node, dict):
        return {
            key: value.replace("/api/_definitions.json#", "_definitions.json#", 1)
            if key == "$ref" and isinstance(value, str)
            else _relative(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_relative(item) for item in node]
    return node


def unpack(wheel: Path, version: str, out: Path) -> int:
    prefix = PREFIX.format(version=version)
    target = out / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(prefix) and name.endswith(".json"):
                schema = _relative(json.loads(archive.read(name)))
                assert isinstance(schema, dict)
                schema.pop("$id", None)
                (target / name[len(prefix) :]).write_text(json.dumps(schema))
                count += 1
    if not count:
        raise SystemExit(f"{wheel} has no schemas for Kubernetes {version}")
    return count


if __name__ == "__main__":
    wheel, version, out = sys.argv[1:4]
    print(f"{unpack(Path(wheel), version, Path(out))} schemas of Kubernetes {version} in {out}")
