import pytest

from sslscope.config import replace
from sslscope.presets import smoke
from sslscope.train import train


def tiny_config(**overrides):
    """The smoke preset with evaluation kept to the final table and no instruments unless asked
    for (tests/test_instruments.py does): a few seconds on a CPU."""
    return replace(smoke(), **{"eval_points": 0, "device": "cpu", "instruments": "",
                               **overrides})


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One finished smoke run shared by the tests that only read a run directory."""
    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    train(tiny_config(eval_points=2, instruments="spectrum,geometry", instrument_points=4),
          run_dir, progress=False)
    return run_dir
