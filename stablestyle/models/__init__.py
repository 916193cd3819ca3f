"""Networks: the (recurrent) transformation net and the frozen VGG-16 loss network."""

from .transformer import InputPadder, TransformerNet, scaled_channels, set_edge_margin
from .vgg import DEFAULT_LAYERS, LAYER_INDEX, VGG16Features, load_vgg16, resolve_vgg16_weights

__all__ = [
    "DEFAULT_LAYERS",
    "LAYER_INDEX",
    "InputPadder",
    "set_edge_margin",
    "TransformerNet",
    "VGG16Features",
    "load_vgg16",
    "resolve_vgg16_weights",
    "scaled_channels",
]
