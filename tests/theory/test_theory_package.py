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
    code = ("import sys, theory.bounds, theory.config, theory.empirical, theory.experiments, theory.gates, "
            "theory.generalisation, theory.outputs, theory.plots; "
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
    with pytest.raises(ValueError):
        tc.settings({"theory": {}}, scale="huge")


def test_workflow_dry_run(tmp_path):
    snakefile = tmp_path / "Snakefile"
    config = yaml.safe_load((ROOT / "config/theory.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**config, "scale": "smoke"}))
    snakefile.write_text(f'configfile: "{tmp_path / "config.yaml"}"\n'
                         f'include: "{ROOT / "workflow/rules/theory.smk"}"\n'
                         "rule all:\n    input: THEORY_OUTPUTS\n")
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-n", "--cores", "1",
                          "-d", str(tmp_path / "run")], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for target in ("theory_experiment", "theory_table", "theory_figure_linear", "theory_figure_hidden",
                   "theory_figure_gap"):
        assert target in res.stdout


def test_outputs_carry_provenance(tmp_path):
    import json

    import matplotlib.pyplot as plt
    import pandas as pd
    from PIL import Image

    from theory import outputs

    prov = outputs.provenance(scale="smoke", config={"a": 1}, seeds=[0])
    assert prov["git_commit"] and prov["versions"]["numpy"] and prov["versions"]["torch"]
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    outputs.save_figure(fig, [tmp_path / "f.png", tmp_path / "f.pdf"], prov)
    assert json.loads(Image.open(tmp_path / "f.png").info["Description"])["seeds"] == [0]
    assert b"git_commit" in (tmp_path / "f.pdf").read_bytes()
    outputs.write_csv(pd.DataFrame({"x": [1]}), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "x\n1\n" and not list(tmp_path.glob(".t.csv*"))
