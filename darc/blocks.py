"""Block adapters: expose the residual branch of third-party residual blocks as a ``branch`` submodule.

darc's built-in blocks keep their residual branch in ``block.branch`` (see :mod:`darc.models.base`), so
``slots="branch"`` can gate it and materialisation can drop it (``block.branch = None`` leaves the shortcut).
A torchvision or timm block computes its branch inline in ``forward``; an adapter rebuilds such a block as a
:class:`ResidualBranchBlock` (``act(branch(x) + shortcut(x))``) made of the block's own layer objects, so the
network computes the same function with the same parameters (only state-dict keys change).

Adapters are looked up by the block's exact class (its dotted path, so that neither torchvision nor timm is
imported here); a subclass, which may change ``forward``, needs its own. Shipped: torchvision's ResNet
``BasicBlock`` / ``Bottleneck``, MobileNetV2 ``InvertedResidual`` and EfficientNet ``MBConv`` (where they have a
residual connection), timm's ResNet ``BasicBlock`` / ``Bottleneck``. Add one with :func:`register_block_adapter`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from darc.registry import Registry


class ResidualBranchBlock(nn.Module):
    """``act(branch(x) + shortcut(x))``; with ``branch = None`` (a removed branch), ``act(shortcut(x))``.

    ``branch`` is computed before ``shortcut``, as in torchvision's and timm's blocks. ``shortcut`` and ``act``
    default to the identity.
    """

    def __init__(self, branch: nn.Module | None, shortcut: nn.Module | None = None, act: nn.Module | None = None,
                 ) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch is not None:
            out = self.branch(x)
            return self.act(out + self.shortcut(x))
        out = self.shortcut(x)
        if out is x and not isinstance(self.act, nn.Identity):
            out = x.clone()  # an in-place activation must not overwrite the block's input
        return self.act(out)


#: ``adapter(block) -> ResidualBranchBlock | None`` (None: this instance has no residual branch).
BlockAdapter = Callable[[nn.Module], ResidualBranchBlock | None]

#: Block adapters by the dotted class path of the block type they adapt.
BLOCK_ADAPTERS: Registry[ResidualBranchBlock | None] = Registry("block adapter")


def class_path(block_type: type) -> str:
    """``module.QualName`` of a class: the key its adapter is registered under."""
    return f"{block_type.__module__}.{block_type.__qualname__}"


def register_block_adapter(block_type: type | str) -> Callable[[BlockAdapter], BlockAdapter]:
    """Decorator registering ``adapter(block) -> ResidualBranchBlock | None`` for blocks of exactly ``block_type``
    (a class, or its dotted path ``"package.module.ClassName"``).

    The adapter must return a module computing what ``block`` computes, built from ``block``'s own layers (no
    copies: the weights stay shared), or None where this instance has no residual connection. Example::

        class MyBlock(nn.Module):  # relu(body(x) + x)
            def __init__(self, c):
                super().__init__()
                self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                                          nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))

            def forward(self, x):
                return torch.relu(self.body(x) + x)

        @register_block_adapter(MyBlock)
        def _my_block(block):
            return ResidualBranchBlock(block.body, nn.Identity(), nn.ReLU())

    after which ``gate_model(net, slots="branch", ...)`` gates every ``MyBlock``'s ``body``.
    """
    key = block_type if isinstance(block_type, str) else class_path(block_type)
    return BLOCK_ADAPTERS.register(key)


def list_block_adapters() -> list[str]:
    """The class paths of the block types that have an adapter."""
    return BLOCK_ADAPTERS.list()


def has_block_adapter(block: nn.Module) -> bool:
    """Whether ``block``'s exact class has an adapter."""
    return class_path(type(block)) in BLOCK_ADAPTERS


def adapt_block(block: nn.Module) -> ResidualBranchBlock | None:
    """``block`` as a :class:`ResidualBranchBlock`, or None where its exact class has no adapter (or the adapter
    finds no residual connection in it)."""
    return BLOCK_ADAPTERS.get(class_path(type(block)))(block) if has_block_adapter(block) else None


def branch_names(model: nn.Module) -> list[str]:
    """Qualified names of the ``branch`` submodules of every :class:`ResidualBranchBlock` in ``model`` that still
    has one, in module order."""
    return [f"{name}.branch" if name else "branch" for name, m in model.named_modules()
            if isinstance(m, ResidualBranchBlock) and m.branch is not None]


def expose_branches(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, list[str]]:
    """Replace every block that has an adapter by its :class:`ResidualBranchBlock`; return the model and the
    names of all ``branch`` submodules (e.g. ``layer1.0.branch``), blocks exposed earlier included.

    The model computes the same function with the same parameters; only state-dict keys change. With
    ``inplace=False`` a deep copy is changed; with ``inplace=True`` ``model`` itself (but if ``model`` is itself
    an adaptable block, the returned model is a new object).
    """
    if not inplace:
        model = copy.deepcopy(model)
    replaced: list[str] = []
    for name, module in list(model.named_modules()):
        if any(name == r or name.startswith(r + ".") for r in replaced):
            continue
        adapted = adapt_block(module)
        if adapted is None:
            continue
        if not name:
            return adapted, branch_names(adapted)
        model.set_submodule(name, adapted)
        replaced.append(name)
    return model, branch_names(model)


def _present(*modules: nn.Module | None) -> nn.Sequential:
    """A Sequential of the given layers, the ``None`` ones left out."""
    return nn.Sequential(*(m for m in modules if m is not None))


def _again(layer: nn.Module) -> nn.Module:
    """Another instance of a parameter-free layer the block calls twice (torchvision's one ``relu``): a module
    used at two places of a network would be listed once by ``named_modules`` and hooked twice."""
    return copy.deepcopy(layer)


@register_block_adapter("torchvision.models.resnet.BasicBlock")
def _torchvision_basic(block: nn.Module) -> ResidualBranchBlock:
    """torchvision ``relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))``."""
    branch = _present(block.conv1, block.bn1, block.relu, block.conv2, block.bn2)
    return ResidualBranchBlock(branch, block.downsample, _again(block.relu))


@register_block_adapter("torchvision.models.resnet.Bottleneck")
def _torchvision_bottleneck(block: nn.Module) -> ResidualBranchBlock:
    """torchvision ``relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + downsample(x))``."""
    branch = _present(block.conv1, block.bn1, block.relu, block.conv2, block.bn2, _again(block.relu), block.conv3,
                      block.bn3)
    return ResidualBranchBlock(branch, block.downsample, _again(block.relu))


@register_block_adapter("torchvision.models.mobilenetv2.InvertedResidual")
def _torchvision_inverted_residual(block: nn.Module) -> ResidualBranchBlock | None:
    """torchvision ``x + conv(x)`` where ``use_res_connect``; a block without it keeps no branch (None)."""
    if not block.use_res_connect:
        return None
    return ResidualBranchBlock(nn.Sequential(*block.conv.children()))


@register_block_adapter("torchvision.models.efficientnet.MBConv")
def _torchvision_mbconv(block: nn.Module) -> ResidualBranchBlock | None:
    """torchvision EfficientNet ``x + stochastic_depth(block(x))`` where ``use_res_connect``; else no branch."""
    if not block.use_res_connect:
        return None
    return ResidualBranchBlock(nn.Sequential(*block.block.children(), block.stochastic_depth))


@register_block_adapter("timm.models.resnet.BasicBlock")
def _timm_basic(block: nn.Module) -> ResidualBranchBlock:
    """timm ``act2(se(bn2(conv2(aa(act1(drop_block(bn1(conv1(x)))))))) [drop_path] + downsample(x))``."""
    branch = _present(block.conv1, block.bn1, block.drop_block, block.act1, block.aa, block.conv2, block.bn2,
                      block.se, block.drop_path)
    return ResidualBranchBlock(branch, block.downsample, block.act2)


@register_block_adapter("timm.models.resnet.Bottleneck")
def _timm_bottleneck(block: nn.Module) -> ResidualBranchBlock:
    """timm ``act3(se(bn3(conv3(aa(act2(drop_block(bn2(conv2(act1(bn1(conv1(x)))))))))) [drop_path]
    + downsample(x))``."""
    branch = _present(block.conv1, block.bn1, block.act1, block.conv2, block.bn2, block.drop_block, block.act2,
                      block.aa, block.conv3, block.bn3, block.se, block.drop_path)
    return ResidualBranchBlock(branch, block.downsample, block.act3)
