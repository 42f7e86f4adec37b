"""User mistakes (STYLE 12, SPEC 2): one clear `error:` line on stderr, a non-zero exit,
nothing on stdout, never a traceback. Setup errors list every problem."""

from __future__ import annotations

import pytest

from tests.cli.transcript import Cli
from tests.conftest import base_setup
from tests.unit.builders import event


def snapshot(cli: Cli) -> tuple:
    """Everything a mistake must leave alone, read in-process."""
    from stockledger.service import reports
    from stockledger.service.workspace import config_history

    ws = cli.workspace()
    try:
        return (reports.trial_balance(ws), reports.valuation(ws), reports.exceptions_list(ws),
                reports.period_list(ws)["entities"], len(config_history(ws)))
    finally:
        ws.close()


@pytest.fixture(scope="session")
def with_receipt(tmp_path_factory: pytest.TempPathFactory, initialised: Cli) -> Cli:
    template = Cli(tmp_path_factory.mktemp("with_receipt"))
    template.copy_workspace_from(initialised)
    template.post([event("r1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="10",
                         unit_cost="5.00")])
    return template


@pytest.fixture
def posted(cli: Cli, with_receipt: Cli) -> Cli:
    """A workspace holding r1: 10 @ 5.00."""
    cli.copy_workspace_from(with_receipt)
    return cli


MISTAKES = {
    # name: (command, words the error line must contain)
    "post a missing file": (["post", "missing.jsonl"], ["missing.jsonl", "No such file"]),
    "post a directory": (["post", "adir"], ["adir"]),
    "as-of month 13": (["report", "trial-balance", "--as-of", "2026-13-45"],
                       ["--as-of", "YYYY-MM-DD", "2026-13-45"]),
    "as-of a word": (["report", "valuation", "--as-of", "yesterday"], ["--as-of", "yesterday"]),
    "as-of 30 February": (["reconcile", "--as-of", "2026-02-30"], ["2026-02-30"]),
    "as-of on the journal": (["journal", "--as-of", "2026-1-1"], ["2026-1-1"]),
    "through a bad date": (["period", "close", "--entity", "ACME", "--through", "31/01/2026"],
                           ["--through", "31/01/2026"]),
    "unknown entity in a report": (["report", "trial-balance", "--entity", "NOPE"],
                                   ["unknown entity", "NOPE"]),
    "unknown entity in valuation": (["report", "valuation", "--entity", "NOPE"], ["NOPE"]),
    "unknown entity in a close": (["period", "close", "--entity", "NOPE", "--through",
                                   "2026-01-31"], ["unknown entity", "NOPE"]),
    "reopen what is not closed": (["period", "reopen", "--entity", "ACME", "--through",
                                   "2026-01-10", "--reason", "x"], ["ACME", "not closed"]),
    "init twice": (["init", "--config", "setup.yaml"], ["already holds a workspace"]),
    "config apply without changes": (["config", "apply", "setup.yaml", "--reason", "same"],
                                     ["unchanged"]),
    "config apply without a reason": (["config", "apply", "setup.yaml", "--reason", " "],
                                      ["--reason"]),
    "config apply a missing file": (["config", "apply", "nope.yaml", "--reason", "x"],
                                    ["nope.yaml"]),
    "retry an id not queued": (["exceptions", "retry", "zz9"], ["zz9"]),
    "discard an id not queued": (["exceptions", "discard", "zz9", "--reason", "x"], ["zz9"]),
}


@pytest.mark.parametrize("name", list(MISTAKES), ids=list(MISTAKES))
def test_user_mistake_prints_one_error_line(posted: Cli, name: str) -> None:
    (posted.dir / "adir").mkdir()
    command, words = MISTAKES[name]
    before = snapshot(posted)
    assert before[0]["total_debit"] == "50.00"
    line = posted.fails(*command)
    for word in words:
        assert word in line, line
    # a mistake changes nothing
    assert snapshot(posted) == before


def test_no_workspace_yet(cli: Cli) -> None:
    for command in (["report", "trial-balance"], ["post", "x.jsonl"], ["exceptions", "list"],
                    ["config", "history"], ["reconcile"]):
        cli.write("x.jsonl", "")
        line = cli.fails(*command)
        assert "no stockledger workspace" in line and "stockledger init" in line


def test_init_with_a_missing_setup_file(cli: Cli) -> None:
    line = cli.fails("init", "--config", "missing.yaml")
    assert "missing.yaml" in line
    assert not (cli.dir / "ws.db").exists()


def test_init_with_a_file_that_is_not_yaml(cli: Cli) -> None:
    cli.write("broken.yaml", "entities: [\n  {code: ACME\n")
    line = cli.fails("init", "--config", "broken.yaml")
    assert "broken.yaml" in line


def test_invalid_setup_lists_every_problem_and_creates_nothing(cli: Cli) -> None:
    setup = base_setup()
    setup["accounts"] = setup["accounts"] + [{"code": "1300", "name": "Again", "type": "asset"}]
    setup["roles"] = {**setup["roles"], "grni": "9999"}
    setup["locations"] = [{"code": "WH1", "entity": "NOPE"}]
    setup["products"] = [
        {"sku": "WIDGET-1", "category": "FG", "uom": "EA"},
        {"sku": "widget_1", "category": "XX", "uom": "EA"},
        {"sku": "KIT-A", "category": "FG", "uom": "EA", "kind": "kit",
         "components": [{"sku": "GHOST", "qty": "1"}]},
    ]
    cli.write("bad.yaml", setup)
    result = cli.run("init", "--config", "bad.yaml")
    assert result.code != 0, str(result)
    assert "Traceback" not in result.err + result.out
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ") and "6 problem" in lines[0], lines[0]
    problems = [line.strip().removeprefix("- ") for line in lines[1:]]
    assert sorted(problems) == sorted([
        "accounts: duplicate code '1300'",
        "roles: grni points at unknown account '9999'",
        "locations: WH1 belongs to unknown entity 'NOPE'",
        "products: 'widget_1' of widget_1 collides with WIDGET-1 (both normalize to 'widget1')",
        "products: widget_1 has unknown category 'XX'",
        "products: KIT-A has unknown component 'GHOST'",
    ])
    # rejected whole: no workspace was created
    assert not (cli.dir / "ws.db").exists()
    assert "no stockledger workspace" in cli.fails("report", "trial-balance")


def test_structurally_invalid_setup_lists_every_problem(cli: Cli) -> None:
    setup = base_setup()
    setup["products"] = [{"sku": "WIDGET-1", "category": "FG"},
                         {"sku": "B", "category": "FG", "uom": "EA", "colour": "red"}]
    setup["entitties"] = []
    cli.write("bad.yaml", setup)
    result = cli.run("init", "--config", "bad.yaml")
    assert result.code != 0 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ")
    body = "\n".join(lines[1:])
    for problem in ("products.0.uom", "products.1.colour", "entitties"):
        assert problem in body, body


def test_config_apply_with_an_invalid_file_lists_every_problem(posted: Cli) -> None:
    ws = posted
    setup = base_setup()
    setup["roles"] = {**setup["roles"], "cogs": "5999", "ppv": "5998"}
    ws.write("v2.yaml", setup)
    result = ws.run("config", "apply", "v2.yaml", "--reason", "typos")
    assert result.code != 0 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert "roles: cogs points at unknown account '5999'" in result.err
    assert "roles: ppv points at unknown account '5998'" in result.err
    assert snapshot(ws)[4] == 1


def test_a_missing_required_option_is_a_usage_error_not_a_traceback(posted: Cli) -> None:
    ws = posted
    ws.post([event("s9", "shipment", "2026-01-03", location="WH1", sku="NOPE", qty="1")])
    result = ws.run("exceptions", "discard", "s9")
    assert result.code != 0 and "Traceback" not in result.err + result.out
    assert "--reason" in result.err
    assert [e["id"] for e in snapshot(ws)[2]] == ["s9"]


def test_init_with_a_setup_file_that_is_not_text(cli: Cli) -> None:
    import random

    cli.write("setup.yaml", random.Random(3).randbytes(2000))
    line = cli.fails("init", "--config", "setup.yaml")
    assert "setup.yaml" in line
    assert not (cli.dir / "ws.db").exists()


@pytest.mark.parametrize(("url", "words"), [
    ("sqlite:///events.jsonl", ["database"]),       # a file that is not a database
    ("foo://user@host/db", ["foo"]),                 # a kind of database stockledger does not know
])
def test_a_db_option_that_is_not_a_database(cli: Cli, url: str, words: list[str]) -> None:
    cli.write("events.jsonl", [event("r1", "receipt", "2026-01-02", location="WH1",
                                     sku="WIDGET-1", qty="1", unit_cost="5.00")])
    before = (cli.dir / "events.jsonl").read_bytes()
    for command in (["report", "trial-balance"], ["post", "events.jsonl"]):
        line = cli.fails(*command, "--db", url, db=False)
        for word in words:
            assert word in line, line
    assert (cli.dir / "events.jsonl").read_bytes() == before
