"""The paper's claimed numbers (arXiv 1905.08170, abstract), shown only as labelled reference columns."""

PAPER_CLAIMS: dict[str, dict[str, float | str]] = {
    "cifar10-wrn": {
        "paper_experiment": "CIFAR-10, WideResNet (WRN-28-10, GluonCV, mixup)",
        "paper_base_acc": 0.972,
        "paper_speedup": 2.28,
        "paper_speedup_kind": "single-sample (batch 1)",
        "paper_memory_reduction": 5.64,
        "paper_acc_change": 0.0,
    },
    "imagenet-resnet": {
        "paper_experiment": "ImageNet, ResNet (ResNet-50-v1d, GluonCV, mixup)",
        "paper_base_acc": 0.7915,
        "paper_speedup": 1.29,
        "paper_speedup_kind": "batch inference",
        "paper_memory_reduction": 3.57,
        "paper_acc_change": -0.01,
    },
}
