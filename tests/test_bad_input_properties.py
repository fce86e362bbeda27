"""Bad input, property-based: any value in any config field is accepted or one sentence.

Targets asserted, over a few hundred hypothesis examples: a config.json with any field set to
any JSON value (wrong types, NaN, ±inf, huge and negative numbers, long strings, nested
containers), or with an unknown key, either validates or raises a UserError of one line that
names the field; never another exception. The same values given on the command line to
`sslscope train` exit with status 2 and one sentence (or would train), and write nothing.
"""

import dataclasses
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sslscope import config as config_lib
from sslscope.cli import main
from sslscope.cli_reference import help_texts
from sslscope.config import Config
from sslscope.errors import UserError

FIELDS = [f.name for f in dataclasses.fields(Config)]
NASTY_NUMBERS = st.sampled_from([0, -1, 1, 2, -(2**31), 2**31, 2**63, 2**70, 0.5, -0.5, 1e-300,
                                 1e308, math.nan, math.inf, -math.inf])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NASTY_NUMBERS | st.integers() | st.floats()
    | st.text(max_size=30) | st.just("x" * 5000),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5,
)


def one_sentence(error: UserError) -> None:
    text = str(error)
    assert text and "\n" not in text and len(text) < 400, text


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_value_in_a_config_file_is_valid_or_one_sentence(field, value):
    data = {**config_lib.to_dict(Config()), field: value}
    try:
        config_lib.validate(config_lib.from_dict(json.loads(json.dumps(data))))
    except UserError as e:
        one_sentence(e)


@settings(max_examples=50, deadline=None)
@given(key=st.text(min_size=1, max_size=40).filter(lambda k: k not in FIELDS))
def test_an_unknown_key_is_one_sentence(key):
    data = {**config_lib.to_dict(Config()), key: 1}
    try:
        config_lib.from_dict(data)
    except UserError as e:
        one_sentence(e)
    else:
        raise AssertionError(f"unknown key {key!r} accepted")


TRAIN_HELP = help_texts()["sslscope train"]
SCALAR_FIELDS = [f.name for f in dataclasses.fields(Config)
                 if f.type in ("int", "float") and f"--{f.name.replace('_', '-')} " in TRAIN_HELP]


def test_the_command_line_fields_are_found():
    assert {"steps", "lr", "batch_size", "seed", "weight_decay"} <= set(SCALAR_FIELDS)


TEXT_VALUES = st.sampled_from(["0", "-1", "-5", "nan", "inf", "-inf", "1e400", "2e9", "abc",
                               "", "1.5", str(2**70)])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(SCALAR_FIELDS), text=TEXT_VALUES)
def test_a_bad_number_on_the_command_line_is_one_sentence(tmp_path, capsys, field, text):
    flag = "--" + field.replace("_", "-")
    data = {**config_lib.to_dict(Config()), field: text}
    try:  # only values the config rejects: a valid one would start a training
        config_lib.validate(config_lib.from_dict(data))
        return
    except UserError:
        pass
    run = tmp_path / "never"
    try:
        code = main(["train", "--preset", "smoke", f"{flag}={text}", "--run-dir", str(run)])
    except SystemExit as e:  # argparse's own usage error: also one line and status 2
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, (flag, text, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(("sslscope",
                                                                                "usage"))
    assert not run.exists()
