"""A DDP smoke run on synthetic data: ``torchrun --nproc_per_node=2 -m darc.train.smoke_ddp --out DIR``.

Trains a tiny conv net with :func:`darc.train.fit` (gloo on CPU, NCCL on CUDA) and saves each
rank's final state dict to ``--weights-dir/rank{R}.pt`` so a test can check that every rank ends
with the same weights and that only rank 0 wrote the checkpoint and logs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn

from darc.data import get_dataset
from darc.io import atomic_torch_save
from darc.train import distributed as D
from darc.train.config import TrainConfig
from darc.train.rng import seed_everything
from darc.train.trainer import fit


def tiny_net(in_ch: int = 3, num_classes: int = 4, width: int = 8) -> nn.Module:
    """Conv-BN-ReLU-dropout, global pool, linear: BN buffers and dropout RNG included on purpose."""
    return nn.Sequential(
        nn.Conv2d(in_ch, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Dropout(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True, help="fit's out_dir (checkpoint, logs)")
    p.add_argument("--weights-dir", default=None, help="where each rank saves rank{R}.pt")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--checkpoint-every-steps", type=int, default=None)
    args = p.parse_args(argv)

    info = D.init_distributed()
    seed_everything(0)
    bundle = get_dataset("synthetic", input_shape=(3, 8, 8), num_classes=4, n_train=128, n_test=64)
    model = tiny_net()
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.05, schedule="cosine",
                      warmup_epochs=0.5, mixup_alpha=0.2, checkpoint_every_steps=args.checkpoint_every_steps)
    result = fit(model, bundle, cfg, args.out, progress=False)
    if args.weights_dir:
        atomic_torch_save(model.state_dict(), Path(args.weights_dir) / f"rank{info.rank}.pt")
    if info.is_main:
        print(f"world_size={info.world_size} test_acc={result['metrics']['test_acc']:.3f}")
    D.barrier()
    D.cleanup()


if __name__ == "__main__":
    main()
