import json
from pathlib import Path

import config


def test_stages_equal_the_original_numbers():
    original = json.loads((Path(__file__).parent / "stages.json").read_text())
    assert config.STAGES == original
    for stage, entries in original.items():
        for mine, theirs in zip(config.STAGES[stage], entries):
            for key, value in theirs.items():  # same values and same types (1 stays an int)
                assert type(mine[key]) is type(value), (stage, mine["id"], key)


def test_the_package_holds_the_table_and_config_py_overrides_it_for_the_commands(monkeypatch):
    """The stage table is written once (pertnet/defaults.py); a change in config.py reaches the
    commands and leaves the package's table as it is."""
    import train
    from pertnet import cli, defaults

    assert config.STAGES == defaults.STAGES and config.STAGES is not defaults.STAGES
    changed = {**config.STAGES, "simple": [{**config.STAGES["simple"][0], "epochs": 50}]}
    monkeypatch.setattr(config, "STAGES", changed)
    args = cli.parser(train.__doc__, config, training=True).parse_args(["--stage", "simple"])
    options = cli.options(args)
    assert [e.epochs for e in options.entries()] == [50] and options.configuration() == "config.py"
    assert defaults.STAGES["simple"][0]["epochs"] == 141
