"""The README's "own network" example runs as written (on a few random batches)."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_own_network_example_runs(tmp_path, monkeypatch):
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)
    loader = [(torch.randn(4, 3, 64, 64), torch.randint(0, 10, (4,))) for _ in range(3)]
    scope = {"loader": loader}
    exec(compile(block, "README.md", "exec"), scope)
    plain, again = scope["plain"], scope["again"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(plain.eval()(x), again.eval()(x), atol=1e-5)
    assert not any(type(m).__name__ == "GatedSlot" for m in plain.modules())
