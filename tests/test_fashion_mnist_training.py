"""A short real training run: WRN-16-2 on a fixed Fashion-MNIST subset reaches >= 80 % on the full test set."""

import json

import pytest
import torch

from darc.data import DatasetNotFoundError, get_dataset
from darc.models import create_model
from darc.train import TrainConfig, fit


@pytest.mark.slow
def test_wrn16_2_short_run_reaches_80_percent_on_full_test_set(tmp_path):
    try:
        data = get_dataset("fashion-mnist", subset=(8000, None), seed=0, train_transform=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST not installed: {exc}")
    assert data.meta.n_test == 10000
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = create_model("wrn16_2", in_chans=1, input_size=28, num_classes=10)
        cfg = TrainConfig(epochs=2, batch_size=64, lr=0.1, schedule="cosine", warmup_epochs=0.2, seed=0,
                          test_batch_size=500, eval_every=2)
        result = fit(model, data, cfg, tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    acc = result["metrics"]["test_acc"]
    seconds = sum(r["epoch_seconds"] for r in result["history"])
    print(json.dumps({"test_acc": acc, "train_and_eval_seconds": seconds}))
    assert acc >= 0.80, f"WRN-16-2 reached only {acc:.4f} on the 10k test set"
