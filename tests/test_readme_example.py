"""The README's one-call example and docs/method.md's step-by-step example run as written (on a few random
batches; the one call with fewer steps than its defaults)."""

import functools
import re
from pathlib import Path

import torch

import darc
import darc.pipeline

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks(path: Path, after: str = "") -> list[str]:
    text = path.read_text()
    return re.findall(r"```python\n(.*?)```", text[text.index(after):] if after else text, re.S)


def test_readme_one_call_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = torchvision_resnet18()
    data = [(torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))) for _ in range(2)]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.cat([x for x, _ in data]),
                                                                        torch.cat([y for _, y in data])), batch_size=8)
    monkeypatch.setattr(darc, "compress", functools.partial(darc.pipeline.compress, search_steps=3, finetune_steps=1,
                                                            max_tries=4, distill_steps=0, pairs=4,
                                                            lam_range=(10.0, 10000.0)))
    scope = {"model": model, "train_loader": loader, "val_loader": loader}
    exec(compile(_python_blocks(ROOT / "README.md")[0], "README.md", "exec"), scope)
    assert not darc.gated_slots(scope["compressed"]) and (tmp_path / "out" / "report.json").exists()


def torchvision_resnet18():
    import torchvision

    return torchvision.models.resnet18(num_classes=10).eval()


def test_docs_low_level_example_runs(tmp_path, monkeypatch):
    block = _python_blocks(ROOT / "docs" / "method.md", after="## The low-level path")[0]
    monkeypatch.chdir(tmp_path)
    loader = [(torch.randn(4, 3, 64, 64), torch.randint(0, 10, (4,))) for _ in range(3)]
    scope = {"loader": loader}
    exec(compile(block, "docs/method.md", "exec"), scope)
    plain, again = scope["plain"], scope["again"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(plain.eval()(x), again.eval()(x), atol=1e-5)
    assert not any(type(m).__name__ == "GatedSlot" for m in plain.modules())
