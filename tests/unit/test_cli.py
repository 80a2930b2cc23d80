"""The buurtalert command as an operator uses it: exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = str(Path(sys.executable).parent / "buurtalert")
DEMO = Path(__file__).parents[2] / "deploy" / "demo"


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_services_contribute_their_subcommands() -> None:
    """Subcommands come from the services' entry points, not from a central list."""
    out = _run("--help").stdout
    for command in ("run", "topics", "moderate", "directory", "channels", "asyncapi", "review"):
        assert command in out


def test_moderate_processes_valid_lines_and_exits_2_on_malformed_ones() -> None:
    """Valid lines give one JSON result each; a malformed line is named on stderr; exit 2."""
    lines = '{"id": "a", "text": "Bedankt!"}\nnot json\n{"id": "b", "text": "Verdachte auto, 112 gebeld"}\n'
    result = _run("moderate", "-", stdin=lines)
    assert result.returncode == 2
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in outputs] == ["a", "b"]
    assert outputs[0]["decision"] == "reject"  # a mere reaction
    assert outputs[1]["decision"] in ("forward", "review")  # an alert is never rejected
    assert set(outputs[0]) == {"id", "decision", "reasons", "scores", "explanation"}
    assert result.stderr.startswith("line 2:")
    assert "Traceback" not in result.stderr


def test_directory_validate_accepts_the_demo_and_names_the_line_of_an_error(tmp_path: Path) -> None:
    """exit 0 for a valid directory; exit 2 with the line for an invalid one."""
    assert _run("directory", "validate", str(DEMO / "weert" / "directory.yaml")).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (DEMO / "weert" / "directory.yaml").read_text().replace("kind: regiegroep", "kind: chatgroep", 1)
    )
    result = _run("directory", "validate", str(bad))
    assert result.returncode == 2
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "chatgroep" in text)
    assert f"line {line}: groups.2.kind" in result.stderr


def test_route_dry_run_prints_deliveries_with_their_rule_chains(tmp_path: Path) -> None:
    """`buurtalert route` shows where a message would go and why, across the border too."""
    message = tmp_path / "message.json"
    message.write_text(
        json.dumps(
            {
                "id": "msg_dry",
                "provider": {"channel": "web", "message_id": "r"},
                "municipality": "weert-demo",
                "group_id": "boshoven-noord",
                "author": {"pseudonym": "p_x", "role": "resident"},
                "text": "Vermiste jongen van 12, rode jas",
                "category": "missing_person",
                "sent_at": "2026-11-23T12:00:00Z",
                "raw_ref": "raw",
            }
        )
    )
    result = _run(
        "route",
        "--directory",
        str(DEMO / "weert" / "directory.yaml"),
        "--partner",
        str(DEMO / "bocholt" / "directory.yaml"),
        str(message),
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    chains = {d["destination"]["group_id"]: d["rules"] for d in output["deliveries"]}
    assert chains == {
        "boshoven-regie": ["buurtgroep_to_regiegroep"],
        "leuken-regie": ["travelling_to_adjacent_district"],
        "centrum-regie": ["travelling_to_adjacent_district"],
        "kaulille-regie": ["cross_border"],
    }


def test_route_dry_run_refuses_an_invalid_message(tmp_path: Path) -> None:
    """A message file that is not a valid message: exit 2, one line, no traceback."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 1}')
    result = _run("route", "--directory", str(DEMO / "weert" / "directory.yaml"), str(bad))
    assert result.returncode == 2
    assert "not a valid message" in result.stderr and "Traceback" not in result.stderr


SAMPLES = Path(__file__).parents[2] / "docs" / "samples"


def test_ingest_parse_prints_the_normalised_batch() -> None:
    """Messages, reactions and membership requests of a WhatsApp webhook, through the service's parser."""
    result = _run(
        "ingest",
        "parse",
        "whatsapp",
        str(SAMPLES / "whatsapp-messages.json"),
        "--municipality-file",
        str(DEMO / "weert" / "municipality.yaml"),
        "--directory",
        str(DEMO / "weert" / "directory.yaml"),
    )
    assert result.returncode == 0, result.stderr
    batch = json.loads(result.stdout)
    assert [m["group_id"] for m in batch["messages"]] == ["boshoven-regie", None]
    assert batch["messages"][1]["media"][0]["provider_media_id"] == "1037543291543636"
    assert batch["memberships"][0]["group_id"] == "leuken-west" and len(batch["reactions"]) == 1
    assert "31600000002" not in result.stdout  # no phone numbers in the output
    statuses = _run(
        "ingest",
        "parse",
        "whatsapp",
        str(SAMPLES / "whatsapp-statuses.json"),
        "--municipality-file",
        str(DEMO / "weert" / "municipality.yaml"),
    )
    assert [s["state"] for s in json.loads(statuses.stdout)["statuses"]] == ["sent", "delivered", "failed"]
    mail = _run(
        "ingest",
        "parse",
        "email",
        str(SAMPLES / "email-report.eml"),
        "--municipality-file",
        str(DEMO / "weert" / "municipality.yaml"),
    )
    assert json.loads(mail.stdout)["messages"][0]["text"].endswith("112 is gebeld.")


def test_ingest_parse_exits_2_with_one_line_on_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"object": "page"')
    for channel, file in (("whatsapp", bad), ("facebook", bad), ("email", tmp_path / "missing.eml")):
        result = _run(
            "ingest",
            "parse",
            channel,
            str(file),
            "--municipality-file",
            str(DEMO / "weert" / "municipality.yaml"),
        )
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_review_user_add_refuses_a_short_password_and_an_unknown_role() -> None:
    """Checked before the database is reached: exit 2 with the reason, no traceback."""
    short = _run(
        "review", "user", "add", "--municipality", "weert-demo", "--role", "moderator", "x", stdin="short\n"
    )
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    role = _run(
        "review", "user", "add", "--municipality", "weert-demo", "--role", "king", "x", stdin="long enough\n"
    )
    assert role.returncode == 2 and "'king' is not one of" in role.stderr
    name = _run(
        "review",
        "user",
        "add",
        "--municipality",
        "weert-demo",
        "--role",
        "admin",
        "a b",
        stdin="long enough\n",
    )
    assert name.returncode == 2 and "Traceback" not in name.stderr
