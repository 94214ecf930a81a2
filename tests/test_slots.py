import pytest
import torchvision

from darc.slots import describe_slots, select_modules


def test_glob_star_stays_within_one_name_part():
    m = torchvision.models.resnet18()
    assert select_modules(m, "layer1.*") == ["layer1.0", "layer1.1"]
    assert "layer1.0.conv1" in select_modules(m, "layer1.**")
    assert select_modules(m, lambda n, mod: n == "fc") == ["fc"]
    with pytest.raises(KeyError, match="matches no module"):
        select_modules(m, "layer9.*")


def test_describe_slots_records_shapes():
    m = torchvision.models.resnet18()
    specs = describe_slots(m, ["layer1.0", "layer2.0"], (3, 64, 64))
    assert specs[0].in_shape == specs[0].out_shape == (64, 16, 16)
    assert specs[1].out_shape == (128, 8, 8) and specs[1].stride == 2 and not specs[1].shape_preserving
