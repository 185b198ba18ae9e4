"""The models: CIFAR ResNet, DenseNet, a VGG-style net and the WSMS/MS-Net wrapper."""

from .base import FeatureOutput, StagedBackbone
from .registry import (
    FAMILIES,
    create_model,
    describe_model,
    family_of_checkpoint,
    list_models,
    model_config,
    model_family,
    register_model,
    teaching_order,
)
from .wsms import WSMSConfig, WSMSNet

__all__ = [
    "FeatureOutput", "StagedBackbone", "WSMSConfig", "WSMSNet",
    "FAMILIES", "create_model", "describe_model", "family_of_checkpoint", "list_models", "model_config",
    "model_family", "register_model", "teaching_order",
]
