import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "simulation.yaml"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE.read_text()
