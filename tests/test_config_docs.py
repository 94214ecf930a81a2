"""config/README.md names every key of the workflow and experiment schemas (so the page cannot drift)."""

import re
from pathlib import Path

import yaml

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
