"""Package boundaries, config and workflow wiring of the theory part."""

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from theory import config as tc

ROOT = Path(__file__).resolve().parents[2]


def test_theory_does_not_import_darc():
    for path in (ROOT / "theory").glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+darc\b", path.read_text(), re.M), path
    code = ("import sys, theory.bounds, theory.checks, theory.config, theory.coverage, theory.empirical, "
            "theory.experiments, theory.fits, theory.gates, theory.generalisation, theory.notebook, theory.outputs, "
            "theory.plots, theory.tightness; "
            "assert not [m for m in sys.modules if m == 'darc' or m.startswith('darc.')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_validates_against_the_schema_fragment():
    schema = yaml.safe_load((ROOT / "workflow/schemas/theory.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config/theory.yaml").read_text())
    root = {"type": "object", "properties": {"theory": schema}}
    jsonschema.validate(config, root)
    config["theory"]["linear"]["typo"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, root)


def test_scales_resolve():
    smoke, default = tc.load(scale="smoke"), tc.load(scale="default")
    assert smoke["scale"] == "smoke" and "scales" not in smoke
    assert max(smoke["linear"]["ks"]) < max(default["linear"]["ks"])
    assert smoke["linear"]["A"] == default["linear"]["A"]  # untouched keys survive the merge
    assert smoke["linear"]["seeds"] == smoke["seeds"] and default["gap"]["seeds"] == [0, 1, 2, 3, 4]
    assert max(smoke["rates"]["ns"]) < max(default["rates"]["ns"])
    assert smoke["tightness"]["n"] < default["tightness"]["n"]
    assert smoke["tightness"]["plane"]["n"] == default["tightness"]["plane"]["n"]  # nested overrides merge
    with pytest.raises(ValueError):
        tc.settings({"theory": {}}, scale="huge")
