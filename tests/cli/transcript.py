"""Run the installed `stockledger` console script like a user would: command in, output out.

    cli = Cli(tmp_path)
    cli.write("setup.yaml", base_setup())
    cli.ok("init", "--config", "setup.yaml")
    tb = cli.json("report", "trial-balance")        # adds --json, parses stdout
    line = cli.fails("report", "valuation", "--as-of", "yesterday")   # the "error: ..." line
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _script() -> str:
    candidates = [ROOT / ".venv" / "bin" / "stockledger", Path(sys.executable).parent / "stockledger"]
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which("stockledger")
    assert found, "the stockledger console script is not installed"
    return found


STOCKLEDGER = _script()
PYCACHE = os.path.join(tempfile.gettempdir(), "stockledger-cli-tests-pycache")
MONEY = re.compile(r"^-?\d+\.\d{2}$")
QTY = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?$")
MONEY_KEYS = {"debit", "credit", "balance", "total_debit", "total_credit", "value",
              "total_value", "subledger", "gl", "difference"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class Cli:
    """A user in a fresh directory with one SQLite workspace at ./ws.db."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.db = f"sqlite:///{directory / 'ws.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKLEDGER_")}
        self.env.update({"STOCKLEDGER_ACTOR": "tester", "COLUMNS": "200", "NO_COLOR": "1"})
        # Every command is a fresh interpreter: let it reuse compiled modules, kept outside
        # the source tree (src/ stays untouched), instead of recompiling on each start.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = PYCACHE

    def write(self, name: str, content: Any) -> str:
        """A file in the directory: text as is, bytes as is, a dict as YAML, a list as JSON lines."""
        path = self.dir / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, dict):
            path.write_text(yaml.safe_dump(content, sort_keys=False))
        elif isinstance(content, list):
            path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n"
                                    for item in content))
        else:
            path.write_text(content)
        return name

    def run(self, *args: str, stdin: str | bytes | None = None, db: bool = True) -> Result:
        command = [STOCKLEDGER, *args] + (["--db", self.db] if db else [])
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(command, check=False, cwd=self.dir, env=self.env, input=data,
                              capture_output=True, timeout=120)
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def ok(self, *args: str, stdin: str | bytes | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.code == 0, str(result)
        assert "Traceback" not in result.err + result.out, str(result)
        return result.out

    def json(self, *args: str, stdin: str | bytes | None = None) -> Any:
        out = self.ok(*args, "--json", stdin=stdin)
        data = json.loads(out)
        check_formats(data)
        return data

    def fails(self, *args: str, db: bool = True, stdin: str | None = None) -> str:
        """A user mistake: non-zero exit, no traceback, one 'error:' line on stderr."""
        result = self.run(*args, db=db, stdin=stdin)
        assert result.code != 0, str(result)
        assert "Traceback" not in result.err + result.out, str(result)
        lines = result.err.strip().splitlines()
        assert lines and lines[0].startswith("error: "), str(result)
        assert len(lines) == 1, f"more than one line on stderr:\n{result}"
        assert result.out == "", str(result)
        return lines[0]

    def init(self, setup: dict[str, Any]) -> None:
        self.write("setup.yaml", setup)
        self.ok("init", "--config", "setup.yaml")

    def copy_workspace_from(self, other: Cli) -> None:
        """Start from a copy of another directory's workspace (cheaper than `init` again)."""
        for suffix in ("", "-wal", "-shm"):
            source = other.dir / f"ws.db{suffix}"
            if source.exists():
                shutil.copyfile(source, self.dir / f"ws.db{suffix}")
        for path in other.dir.glob("*.yaml"):
            shutil.copyfile(path, self.dir / path.name)

    def workspace(self) -> Any:
        """The same workspace, opened in this process (for checks that are not the transcript)."""
        from stockledger.service.workspace import Workspace

        return Workspace(self.db)

    def post(self, events: list[Any], *options: str) -> dict[str, Any]:
        self.write("events.jsonl", events)
        return self.json("post", "events.jsonl", *options)


def check_formats(data: Any, key: str | None = None) -> None:
    """SPEC 8: money strings with exactly 2 decimals, quantities plain without trailing zeros."""
    if isinstance(data, dict):
        for k, v in data.items():
            check_formats(v, k)
    elif isinstance(data, list):
        for item in data:
            check_formats(item, key)
    elif key in MONEY_KEYS:
        assert isinstance(data, str) and MONEY.match(data), f"{key}={data!r} is not money text"
    elif key == "qty":
        assert isinstance(data, str) and QTY.match(data), f"qty={data!r} is not quantity text"


def balances(tb: dict[str, Any]) -> dict[str, str]:
    return {a["code"]: a["balance"] for a in tb["accounts"] if a["balance"] != "0.00"}
