"""One place that knows every model: ``create_model(name, **config)``, ``list_models()``,
``model_family(name)``.

Each model carries its config dataclass as ``model.config``; a checkpoint stores the
registry name and ``dataclasses.asdict(model.config)`` and rebuilds from them.

Each model belongs to one family (:data:`FAMILIES`): a plain single-stage CNN (the
baseline side of every comparison), a WSMS-Net (stages share their convolutions), an
MS-Net (the same stages, nothing shared) or a scale-channel net. Code that needs to
know the family asks :func:`model_family`, never the name's prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from torch import nn

from .densenet import DenseNet, DenseNetConfig
from .resnet import CifarResNet, ResNetConfig
from .scale_channel import ScaleChannelConfig, ScaleChannelNet
from .vgg import VGG, VGGConfig
from .wsms import WSMSConfig, WSMSNet

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}
_FAMILIES: dict[str, str] = {}
# In the order a class compares them: the baseline first.
FAMILIES = ("baseline", "wsms", "ms", "scale-channel")


def register_model(name: str, description: str, family: str = "baseline"):
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")

    def wrap(fn: Callable[..., nn.Module]):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = fn
        _DESCRIPTIONS[name] = description
        _FAMILIES[name] = family
        return fn
    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_family(name: str) -> str:
    """The family of a registered model: one of :data:`FAMILIES`.

    Example:
        >>> model_family("wsms_resnet20"), model_family("resnet20"), model_family("sc_resnet20")
        ('wsms', 'baseline', 'scale-channel')
    """
    _check_name(name)
    return _FAMILIES[name]


def family_of_checkpoint(name: str) -> str | None:
    """The family of the registered model a checkpoint's directory name starts with
    (``wsms_resnet20_jitter`` -> ``"wsms"``), or None if it starts with none."""
    model = max((m for m in _MODELS if name == m or name.startswith(m + "_")), key=len, default=None)
    return _FAMILIES[model] if model else None


def teaching_order(name: str) -> tuple[int, str]:
    """Sort key for checkpoint names: a plain baseline first, then WSMS-Nets, MS-Nets,
    scale-channel nets, then the baselines' variants (``resnet20, wsms_resnet20,
    ms_resnet20, resnet20_jitter``): the order a class compares them.

    Example:
        >>> sorted(["resnet20_jitter", "ms_resnet20", "resnet20", "wsms_resnet20"], key=teaching_order)
        ['resnet20', 'wsms_resnet20', 'ms_resnet20', 'resnet20_jitter']
    """
    family = family_of_checkpoint(name)
    if family is None or (family == "baseline" and name not in _MODELS):
        return len(FAMILIES), name
    return FAMILIES.index(family), name


def describe_model(name: str) -> str:
    _check_name(name)
    return _DESCRIPTIONS[name]


def _check_name(name: str) -> None:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")


def create_model(name: str, **config) -> nn.Module:
    """Builds a registered model.

    Args:
        name: a name from :func:`list_models`, e.g. ``"resnet20"`` or ``"wsms_resnet20"``.
        **config: fields of that model's config dataclass overriding its defaults.

    Example:
        >>> create_model("wsms_resnet110", integration="3x3", num_classes=100).config.stages
        3
    """
    _check_name(name)
    try:
        model = _MODELS[name](**config)
    except TypeError as e:  # an unknown config field
        raise ValueError(f"bad config for {name!r}: {e}") from None
    model.model_name = name
    return model


def model_config(model: nn.Module) -> dict:
    """The JSON-able config a checkpoint stores to rebuild ``model``."""
    return asdict(model.config)


# --- backbones ---------------------------------------------------------------------

def _fixed(name: str, config: dict, **fixed) -> dict:
    """``config`` with the fields a registry name fixes; a stored config repeats them."""
    for key, value in fixed.items():
        if config.get(key, value) != value:
            raise ValueError(f"{name} has {key}={value!r}, got {key}={config[key]!r}")
    return {**config, **fixed}


def _resnet(depth: int, config: dict) -> CifarResNet:
    return CifarResNet(ResNetConfig(**_fixed(f"resnet{depth}", config, depth=depth)))


for _d in (20, 32, 44, 56, 110):
    register_model(f"resnet{_d}", f"CIFAR ResNet-{_d} (He et al. 2016, option A shortcuts)")(
        lambda d=_d, **c: _resnet(d, c))


@register_model("densenet", "DenseNet for CIFAR, depth 100, k=24, no bottleneck (WSMS paper 4.1)")
def densenet(**config) -> DenseNet:
    return DenseNet(DenseNetConfig(**config))


@register_model("vgg", "plain VGG-style CIFAR net: 3x3 conv stacks, max-pool downsizing")
def vgg(**config) -> VGG:
    return VGG(VGGConfig(**config))


# --- multi-stage wrappers ----------------------------------------------------------

def _multistage(backbone: str, shared: bool, config: dict) -> WSMSNet:
    prefix = "wsms" if shared else "ms"
    cfg = WSMSConfig(**_fixed(f"{prefix}_{backbone}", config, backbone=backbone, shared=shared))

    def make_backbone():
        return create_model(cfg.backbone, **{"num_classes": cfg.num_classes, **cfg.backbone_config})
    return WSMSNet(cfg, make_backbone)


for _bb in [f"resnet{d}" for d in (20, 32, 44, 56, 110)] + ["densenet", "vgg"]:
    register_model(f"wsms_{_bb}", f"WSMS-Net over {_bb}: 3 stages, shared convolutions, 1x1 integration",
                   "wsms")(lambda bb=_bb, **c: _multistage(bb, True, c))
    register_model(f"ms_{_bb}", f"MS-Net over {_bb}: 3 stages, nothing shared, 1x1 integration", "ms")(
        lambda bb=_bb, **c: _multistage(bb, False, c))


def _scale_channel(backbone: str, config: dict) -> ScaleChannelNet:
    cfg = ScaleChannelConfig(**_fixed(f"sc_{backbone}", config, backbone=backbone))
    return ScaleChannelNet(cfg, create_model(cfg.backbone, **{"num_classes": cfg.num_classes, **cfg.backbone_config}))


for _bb in [f"resnet{d}" for d in (20, 32, 44, 56, 110)]:
    register_model(f"sc_{_bb}", f"scale-channel {_bb}: one {_bb} (all weights shared) on the image at 1, 1/2, 1/4, "
                                "max over channels, one classifier", "scale-channel")(
        lambda bb=_bb, **c: _scale_channel(bb, c))
