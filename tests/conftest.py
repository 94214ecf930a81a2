import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

# Tests assert behaviour, never speed: one intra-op thread keeps them deterministic and avoids
# oversubscription on small shared machines.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
