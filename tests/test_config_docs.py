"""config/README.md names every key of the workflow and experiment schemas, and is exactly what
``python -m darc.config_docs`` generates from their descriptions and config/README.template.md (so the page
cannot drift, and a new key cannot go undocumented)."""

import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml

from darc import config_docs

ROOT = Path(__file__).resolve().parent.parent


def _keys(schema: dict, defs: dict) -> set[str]:
    """Every property name in a JSON schema, following local $refs (each once: a definition may refer to itself)."""
    found: set[str] = set()
    followed: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and ref not in followed:
                followed.add(ref)
                walk(defs[ref.rsplit("/", 1)[1]])
            for name, sub in node.get("properties", {}).items():
                found.add(name)
                walk(sub)
            for key in ("items", "additionalProperties"):
                walk(node.get(key))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return found


def test_config_readme_names_every_schema_key():
    text = (ROOT / "config" / "README.md").read_text()
    named = set(re.findall(r"`([a-z_0-9.]+)`", text))
    named |= {part for name in named for part in name.split(".")}
    experiment = yaml.safe_load((ROOT / "darc/configs/experiment.schema.yaml").read_text())
    workflow = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    keys = _keys(experiment, experiment.get("$defs", {})) | _keys(workflow, workflow.get("$defs", {}))
    assert keys, "no keys found: the schema walk is broken"
    assert not keys - named, f"config/README.md does not describe {sorted(keys - named)}"


def test_the_committed_readme_is_what_the_schemas_and_template_render():
    text = (ROOT / "config" / "README.md").read_text(encoding="utf-8")
    assert config_docs.render(*config_docs.inputs(ROOT)) == text, "run: python -m darc.config_docs"
    assert config_docs.main(["--check"]) == 0


@pytest.mark.parametrize("where", ["experiment:search", "experiment:$defs.train", "experiment:peers.prune",
                                   "workflow:experiments.*.scales"])
def test_a_property_without_a_description_is_refused(where):
    experiment, workflow, template = config_docs.inputs(ROOT)
    schemas = {"experiment": copy.deepcopy(experiment), "workflow": copy.deepcopy(workflow)}
    name, path = where.split(":")
    node = schemas[name]
    for part in path.split("."):
        node = node["additionalProperties"] if part == "*" else (node[part] if part == "$defs" else
                                                               node.get("properties", node)[part])
    node["properties"]["brand_new_key"] = {"type": "integer"}
    with pytest.raises(config_docs.ConfigDocsError, match=r"without a description: .*brand_new_key"):
        config_docs.render(schemas["experiment"], schemas["workflow"], template)
    node["properties"]["brand_new_key"]["description"] = "now documented"
    page = config_docs.render(schemas["experiment"], schemas["workflow"], template)
    assert "brand_new_key` | now documented |" in page


def test_a_key_in_no_table_is_refused():
    experiment, workflow, template = config_docs.inputs(ROOT)
    without_top = template.replace("{{keys:experiment}}\n", "")
    assert without_top != template
    with pytest.raises(config_docs.ConfigDocsError, match=r"in no table.*experiment schema: dataset"):
        config_docs.render(experiment, workflow, without_top)
    # finetune less train: only the keys finetune takes unchanged from train are left out
    experiment = copy.deepcopy(experiment)
    experiment["$defs"]["finetune"]["properties"]["epochs"] = {"type": "integer", "description": "its own epochs"}
    assert "| `epochs` | its own epochs |" in config_docs.render(experiment, workflow, template)


def test_tables_defaults_nesting_and_escaping():
    experiment = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": 3, "description": "an a | with a bar"},
            "own": {"$ref": "#/$defs/own", "description": "see below"},
            "nested": {"type": "object", "description": "a nested one",
                       "properties": {"b": {"type": "string", "default": "x", "description": "a\n  b"}}},
            "many": {"type": "object", "description": "a mapping",
                     "additionalProperties": {"type": "object", "properties": {"c": {"description": "c"}}}},
        },
        "$defs": {"own": {"type": "object", "properties": {"d": {"type": "boolean", "default": False,
                                                                   "description": "d"}}}},
    }
    workflow = {"type": "object", "properties": {"w": {"description": "w"}}}
    template = "# Title\n\n{{keys:experiment}}\n\n## own\n\n{{keys:experiment:own}}\n\n{{keys:workflow}}\n"
    page = config_docs.render(experiment, workflow, template)
    assert page.startswith("<!-- Generated by `python -m darc.config_docs`")
    header = "| key | meaning |\n|---|---|\n"
    assert page.split("-->\n\n", 1)[1] == (
        "# Title\n\n" + header
        + "| `a` | an a \\| with a bar (default: `3`) |\n"
        + "| `own` | see below |\n"
        + "| `nested` | a nested one |\n"
        + "| `nested.b` | a b (default: `x`) |\n"
        + "| `many` | a mapping |\n"
        + "| `many.<name>.c` | c |\n"
        + "\n## own\n\n" + header + "| `d` | d (default: `false`) |\n\n"
        + header + "| `w` | w |\n"
    )


@pytest.mark.parametrize("line, message", [
    ("{{keys:nowhere}}", "unknown schema"),
    ("{{keys:experiment:no_such_key}}", "no property 'no_such_key'"),
    ("{{keys:experiment:seed}}", "no properties to list"),
    ("see {{keys:experiment:train}} inline", "malformed placeholder"),
])
def test_a_bad_placeholder_is_refused(line, message):
    experiment, workflow, template = config_docs.inputs(ROOT)
    with pytest.raises(config_docs.ConfigDocsError, match=message):
        config_docs.render(experiment, workflow, template + "\n" + line + "\n")


def test_check_and_rewrite(tmp_path, capsys):
    for rel in (config_docs.README, config_docs.TEMPLATE, config_docs.EXPERIMENT_SCHEMA, config_docs.WORKFLOW_SCHEMA):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    readme = tmp_path / config_docs.README
    assert config_docs.main(["--root", str(tmp_path), "--check"]) == 0
    readme.write_text(readme.read_text(encoding="utf-8").replace("free text", "free text, edited"), encoding="utf-8")
    assert config_docs.main(["--root", str(tmp_path), "--check"]) == 1
    assert "out of date: run python -m darc.config_docs" in capsys.readouterr().err
    assert config_docs.main(["--root", str(tmp_path)]) == 0
    assert readme.read_text(encoding="utf-8") == (ROOT / config_docs.README).read_text(encoding="utf-8")
    assert config_docs.main(["--root", str(tmp_path), "--check"]) == 0
