"""The models: CIFAR ResNet, DenseNet, a VGG-style net and the WSMS/MS-Net wrapper."""

from .base import FeatureOutput, StagedBackbone
from .registry import create_model, describe_model, list_models, model_config, register_model
from .wsms import WSMSConfig, WSMSNet

__all__ = [
    "FeatureOutput", "StagedBackbone", "WSMSConfig", "WSMSNet",
    "create_model", "describe_model", "list_models", "model_config", "register_model",
]
