"""The deployment files (deploy/docker, deploy/compose, deploy/helm) agree with the code: the
chart's topics are generated from topics.py and committed fresh, every service appears wherever
services are listed, the image's recipe installs one service without the development kit, and
no secret sits in a file meant for the repository. `make manifests` validates the same files
against their schemas with helm, kubeconform and compose-go; nothing here builds an image."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from buurtalert.shared.cli import (
    STRIMZI_MANIFEST,
    carries_personal_data,
    main,
    partition_bounds,
    strimzi_manifest,
)
from buurtalert.shared.topics import SERVICES, TOPICS, retry_topic

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "buurtalert"
COMPOSE = ROOT / "deploy" / "compose"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
#: The service being added with issue 14; listed (disabled) wherever services are listed.
COMING: set[str] = set()  # services announced before their package exists


def _services() -> set[str]:
    """The services of this checkout: every registered service, and every services/<name>/."""
    registered = {ep.name for ep in entry_points(group="buurtalert.services")}
    present = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    return registered | present


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- the topics of the chart ------------------------------------------------------------------


def test_committed_strimzi_topics_are_up_to_date() -> None:
    """Regenerating templates/topics.yaml from topics.py gives the committed file (run `make helm-topics`)."""
    assert (ROOT / STRIMZI_MANIFEST).read_text() == strimzi_manifest(), "stale: run `make helm-topics`"


def test_the_chart_has_one_kafka_topic_per_declared_topic_with_its_partitions() -> None:
    text = strimzi_manifest()
    resources = re.findall(
        r'topicName: \{\{ include "buurtalert.topicName" \(list \. "([^"]+)"\) \}\}\n  partitions: (\d+)',
        text,
    )
    assert resources == [(t.name, str(t.partitions)) for t in TOPICS]
    assert text.count("kind: KafkaTopic") == len(TOPICS) + 1  # and one per partner adapter


def test_topics_with_personal_data_get_the_short_retention() -> None:
    """What the issue names carries personal data; the class is written on each KafkaTopic."""
    for topic in TOPICS:
        named = any(
            fnmatch.fnmatchcase(topic.name, p)
            for p in (
                "messages.*",
                "moderation.*",
                "deliveries.*",
                "ingest.quarantine",
                "*.retry",
                "*.deadletter",
            )
        )
        if named:
            assert carries_personal_data(topic), topic.name
        retention = "personalData" if carries_personal_data(topic) else "default"
        assert f'(list . "{topic.name}" "{retention}")' in strimzi_manifest()


def test_partition_bounds_leave_each_services_retry_topic_aside() -> None:
    """A service's bound is the smallest partition count among the topics it reads, its
    one-partition retry topic aside: otherwise no service could have two replicas."""
    bounds = partition_bounds(TOPICS)
    assert set(SERVICES) <= set(bounds)
    for service, topic in bounds.items():
        assert service in topic.consumers and topic.name != retry_topic(service).name
        read = [t for t in TOPICS if service in t.consumers and t.name != retry_topic(service).name]
        assert topic.partitions == min(t.partitions for t in read)
    assert bounds["moderation"].name == "messages.inbound"
    assert (
        f"routing: {{topic: {bounds['routing'].name}, partitions: {bounds['routing'].partitions}}}"
        in strimzi_manifest()
    )


def test_topics_manifest_command_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "topics.yaml"
    assert runner.invoke(main, ["topics", "manifest", "--check", "--out", str(out)]).exit_code == 1
    written = runner.invoke(main, ["topics", "manifest", "--format", "strimzi", "--out", str(out)])
    assert written.exit_code == 0 and out.read_text() == strimzi_manifest()
    assert runner.invoke(main, ["topics", "manifest", "--check", "--out", str(out)]).exit_code == 0
    out.write_text(out.read_text().replace("partitions: 6", "partitions: 7"))
    stale = runner.invoke(main, ["topics", "manifest", "--check", "--out", str(out)])
    assert stale.exit_code == 1 and "make helm-topics" in stale.output
    assert runner.invoke(main, ["topics", "manifest", "--out", "-"]).output == strimzi_manifest()


# --- every service wherever services are listed ----------------------------------------------


def test_every_service_is_in_the_compose_file_with_its_own_image() -> None:
    services = _yaml(COMPOSE / "compose.yaml")["services"]
    for name in _services() | COMING:
        assert name in services, f"compose.yaml has no service {name}"
        assert services[name]["build"]["args"]["SERVICE"] == name
        assert services[name]["image"].split("/")[-1].startswith(f"buurtalert-{name}:")
    for name in COMING - _services():
        assert services[name]["profiles"], f"{name} is not there yet: keep it behind a profile"


def test_every_service_is_in_the_chart_and_in_make_images() -> None:
    values = _yaml(CHART / "values.yaml")["services"]
    makefile = (ROOT / "Makefile").read_text()
    listed = set(re.search(r"^SERVICES := (.*)$", makefile, re.M).group(1).split())  # type: ignore[union-attr]
    for name in _services() | COMING:
        assert name in listed, f"Makefile: SERVICES lacks {name}"
    http = set(re.search(r"^HTTP_SERVICES := (.*)$", makefile, re.M).group(1).split())  # type: ignore[union-attr]
    compose = _yaml(COMPOSE / "compose.yaml")["services"]
    assert http == {n for n in listed if compose[n]["build"].get("target") == "http-service"}
    for name in _services():
        assert values[name]["enabled"], f"values.yaml: services.{name} is disabled"
    for name in COMING - _services():
        assert values[name]["enabled"] is False
    ports = [svc["httpPort"] for svc in values.values()]
    assert values["ingest"]["httpPort"] == 8080 and len(ports) == len(set(ports))
    for name, svc in values.items():
        assert svc["resources"]["requests"] and svc["resources"]["limits"], name


# --- municipalities ---------------------------------------------------------------------------


def test_each_municipality_has_an_environment_file_and_a_values_file() -> None:
    compose = {p.stem for p in (COMPOSE / "env").glob("*.env")}
    helm = {p.stem.removeprefix("values-") for p in CHART.glob("values-*.yaml")}
    assert compose == helm == {"weert", "bocholt"}
    for name in compose:
        env = dict(
            line.split("=", 1)
            for line in (COMPOSE / "env" / f"{name}.env").read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert env["MUNICIPALITY"] == name
        for key in ("MUNICIPALITY_FILE", "DIRECTORY_FILE"):
            assert (COMPOSE / env[key]).is_file(), f"{name}.env: {key} names no file"
        assert env["MONGO_PASSWORD"].startswith("change-me"), (
            "a password in the repository must be a placeholder"
        )


def _secret_like(node: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if re.search(r"password|token|secret|key$", str(key), re.I) and not re.match(
                r"^(existingSecret|tlsSecret|imagePullSecrets|key|urlKey)$", str(key)
            ):
                found.append(where)
            found += _secret_like(value, where)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _secret_like(item, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("values", sorted(p.name for p in CHART.glob("values*.yaml")))
def test_the_chart_values_hold_no_secret(values: str) -> None:
    """Secrets come from existing Secrets, named in the values, never given in them."""
    assert _secret_like(_yaml(CHART / values)) == []


def test_the_municipality_file_reaches_compose_services_as_a_secret() -> None:
    """It holds secrets: a compose secret, never an environment variable or a plain mount."""
    text = (COMPOSE / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    assert text.count("${MUNICIPALITY_FILE") == 1
    assert compose["secrets"]["municipality"]["file"].startswith("${MUNICIPALITY_FILE")
    for name, service in compose["services"].items():
        if service["image"].split("/")[-1].startswith("buurtalert-"):
            assert service["secrets"] == ["municipality"], name
            assert service["environment"]["BUURTALERT_MUNICIPALITY_FILE"] == "/run/secrets/municipality"


# --- the image's recipe -----------------------------------------------------------------------


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: `**` any number of directories, `*` and `?`
    within one name."""
    regex = ""
    i = 0
    glob = glob.rstrip("/")
    while i < len(glob):
        if glob.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif glob[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif glob[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(glob[i]), i + 1
    return re.compile(regex)


def _build_context(target: Path) -> None:
    """Copy the files docker would send, after .dockerignore: a pattern matches a path or any
    directory above it; the last matching pattern decides, `!` keeping the file."""
    rules = [
        (line.startswith("!"), _pattern(line.removeprefix("!")))
        for line in (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
        if line and not line.startswith("#")
    ]
    # os.walk, not rglob: it passes over directories that vanish while it walks (the test
    # broker deletes its topics' directories under .local while other tests run).
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            _copy_if_kept(Path(folder, name).relative_to(ROOT).as_posix(), rules, target)


def _copy_if_kept(relative: str, rules: list[tuple[bool, re.Pattern[str]]], target: Path) -> None:
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    keep = True
    for negate, pattern in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            keep = negate
    if keep:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target / relative)


def _dockerfile_check() -> str:
    """The Python the Dockerfile's build stage runs to check the environment it built."""
    match = re.search(r"<<'PY'\n(.*?)\nPY\n", DOCKERFILE.read_text(), re.S)
    assert match, "the Dockerfile's environment check is gone"
    return match.group(1)


def test_the_build_context_leaves_out_the_devkit_tests_and_local_state(tmp_path: Path) -> None:
    _build_context(tmp_path)
    kept = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert "uv.lock" in kept and "deploy/docker/entrypoint.sh" in kept
    assert "services/routing/src/buurtalert/routing/service.py" in kept
    assert "devkit/pyproject.toml" in kept  # uv reads every member's
    for path in kept:
        assert not path.startswith(
            ("devkit/src", "tests/", ".venv/", ".local/", "docs/", "examples/partner-adapter/src")
        )
        assert "__pycache__" not in path and not path.endswith(".env")


@pytest.mark.parametrize("service", sorted(_services()))
def test_the_images_uv_step_installs_the_service_without_the_devkit(tmp_path: Path, service: str) -> None:
    """The build stage's `uv sync`, run here on the build context (offline, from uv's cache),
    then the Dockerfile's own check of what it installed; the service and its commands load
    from that environment alone, without the dev dependencies."""
    uv = ROOT / ".local" / "tools" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("uv is installed by `make env`")
    context = tmp_path / "src"
    context.mkdir()
    _build_context(context)
    command = re.search(r"uv sync (--frozen [^\n]*)", DOCKERFILE.read_text())
    assert command and '--package "buurtalert-${SERVICE}"' in command.group(1)
    arguments = command.group(1).replace('"buurtalert-${SERVICE}"', f"buurtalert-{service}").split()
    arguments[arguments.index("--python") + 1] = sys.executable
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    synced = subprocess.run(
        [str(uv), "sync", *arguments], cwd=context, env=env, capture_output=True, text=True
    )
    assert synced.returncode == 0, synced.stderr
    checked = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-", service],
        input=_dockerfile_check(),
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    installed = {
        p.name.split("-")[0] for p in (tmp_path / "venv").glob("lib/python*/site-packages/*.dist-info")
    }
    assert {f"buurtalert_{service}", "buurtalert_shared"} <= installed
    others = {f"buurtalert_{s}" for s in _services() - {service}}
    assert not installed & {"buurtalert_devkit", *others, "pytest", "ruff", "mypy", "scikit_learn"}
    loads = (
        "import importlib.metadata as md\n"
        "for group in ('buurtalert.services', 'buurtalert.commands', 'buurtalert.channels'):\n"
        "    for ep in md.entry_points(group=group):\n"
        "        ep.load()\n"
        "        print(group, ep.name)\n"
    )
    loaded = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", loads], capture_output=True, text=True, cwd=tmp_path
    )
    assert loaded.returncode == 0, loaded.stderr
    assert f"buurtalert.services {service}" in loaded.stdout.splitlines()
    if service == _yaml(CHART / "values.yaml")["directory"]["loaderImage"]:
        assert "buurtalert.commands directory" in loaded.stdout.splitlines(), "the loader image cannot load"


def test_the_entrypoint_runs_the_images_service_or_the_command_given(tmp_path: Path) -> None:
    fake = tmp_path / "buurtalert"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "BUURTALERT_SERVICE": "moderation"}
    entrypoint = str(ROOT / "deploy" / "docker" / "entrypoint.sh")
    assert subprocess.run([entrypoint], env=env, capture_output=True, text=True).stdout == "run moderation\n"
    given = subprocess.run([entrypoint, "topics", "create"], env=env, capture_output=True, text=True)
    assert given.stdout == "topics create\n"
    unset = subprocess.run([entrypoint], env={"PATH": env["PATH"]}, capture_output=True, text=True)
    assert unset.returncode != 0 and "BUURTALERT_SERVICE" in unset.stderr
