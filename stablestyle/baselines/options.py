"""Typed options shared by the optimisation baselines (:mod:`stablestyle.baselines`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import UserError
from ..losses import LossWeights
from ..models.vgg import LAYER_INDEX

__all__ = ["OptimOptions", "OPTIMIZERS", "INITS", "default_weights", "DEFAULT_LR"]

#: Optimisers of the image pixels.
OPTIMIZERS = ("lbfgs", "adam")
#: Initialisations of each frame's image (``"prev-warped"`` needs a previous frame; the first uses the content).
INITS = ("content", "noise", "prev-warped")
#: Step size when :attr:`OptimOptions.lr` is ``None``: L-BFGS takes quasi-Newton steps of length ~1 (no
#: line search, as in Gatys' and Ruder's Torch code); Adam moves each pixel (range [0, 1]) by ~lr per step
#: (0.05: the lowest style loss after 100 steps of 0.01 / 0.02 / 0.05 / 0.1, measured at 64x48).
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.05}


#: TV weight: removes most high-frequency noise at little cost (see :func:`default_weights`).
TV_WEIGHT = 10.0
#: Temporal weight ``w_t`` of Ruder et al.'s term (see :func:`default_weights`).
TEMPORAL_WEIGHT = 100.0


def default_weights() -> LossWeights:
    """Loss weights for the *relative* terms of :mod:`stablestyle.baselines.objective`.

    Content and style are the training objective's relative terms (divided by
    their targets' energy, layer by layer), so these weights do not depend on
    the activation scale of the VGG weights, and ``content = 1, style = 10``
    are the training defaults (:class:`stablestyle.losses.LossWeights`): with
    them the optimisation takes on the painting while the photo stays
    readable (``bench/quality.py`` draws it).

    * ``tv`` = :data:`TV_WEIGHT`: an optimisation over pixels produces
      single-pixel speckle that a network's output does not have; this removes
      most of it at a small cost in style and content loss.
    * ``temporal`` = :data:`TEMPORAL_WEIGHT` (Ruder et al.'s ``w_t``): keeps most
      of the stability gain of the temporal term at a small style cost; the
      warped initialisation alone already makes the result much steadier than
      per-frame optimisation (``tests/test_baselines.py`` checks the ordering).
    """
    return LossWeights(content=1.0, style=10.0, tv=TV_WEIGHT, temporal=TEMPORAL_WEIGHT)


@dataclass
class OptimOptions:
    """Options of the optimisation baselines (Gatys et al. 2016; Ruder et al. 2016).

    Attributes:
        iterations: optimiser iterations per frame (one L-BFGS iteration = one
            VGG forward + backward).
        first_iterations: iterations for the first frame of a clip (``None`` =
            ``iterations``); with ``prev-warped`` initialisation later frames
            start close to a solution and need fewer than the first.
        size: long side in pixels at which frames are optimised (frames larger
            than this are shrunk, never enlarged; outputs are resized back to
            the input size); ``None`` = full size.
        init: ``"content"`` (the frame), ``"noise"`` (uniform in [0, 1], seeded),
            ``"prev-warped"`` (the previous result warped by the flow; Ruder's
            initialisation); ``None`` = the method's default (``"content"``
            for gatys, ``"prev-warped"`` for ruder).
        optimizer: ``"lbfgs"`` or ``"adam"``.
        lr: step size; ``None`` = :data:`DEFAULT_LR` for the optimiser.
        weights: loss weights applied to the relative terms (see
            :func:`default_weights`).
        style_size: long side of the style image in pixels; ``None`` = the
            long side of the optimised frame (style scale follows the frame).
        flow_method: a key of :data:`stablestyle.flow.FLOW_METHODS`
            (``"dis"`` fast default, ``"deepflow"`` as in Ruder et al.).
        long_term: Ruder's long-term temporal loss over previous frames
            ``t - j``, ``j`` in ``long_term_offsets`` (otherwise only ``t - 1``).
        long_term_offsets: the set ``J`` (must contain 1).
        content_layers, style_layers: VGG taps (Gatys et al. used conv4_2 for
            content and conv1_1 .. conv5_1 for style; conv5_1 is not in the
            shared conv1-4 weights, so the default stops at relu4_1).
        vgg_weights: VGG-16 state dict path; ``None`` = the usual lookup
            (:func:`stablestyle.models.vgg.resolve_vgg16_weights`).
        seed: seed of the noise initialisation (frame ``i`` uses ``seed + i``).
    """

    iterations: int = 100
    first_iterations: int | None = None
    size: int | None = 256
    init: str | None = None
    optimizer: str = "lbfgs"
    lr: float | None = None
    weights: LossWeights = field(default_factory=default_weights)
    style_size: int | None = None
    flow_method: str = "dis"
    long_term: bool = False
    long_term_offsets: tuple[int, ...] = (1, 2, 4)
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    vgg_weights: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.long_term_offsets = tuple(self.long_term_offsets)
        self.content_layers = tuple(self.content_layers)
        self.style_layers = tuple(self.style_layers)

    def validate(self) -> None:
        """Raise :class:`UserError` naming the first invalid option and what is valid."""
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise UserError(f"iterations must be an integer >= 1, got {self.iterations!r}")
        if self.first_iterations is not None and (not isinstance(self.first_iterations, int)
                                                  or self.first_iterations < 1):
            raise UserError(f"first_iterations must be an integer >= 1 or None, got {self.first_iterations!r}")
        for name in ("size", "style_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 16):
                raise UserError(f"{name} must be an integer >= 16 (pixels, long side) or None, got {value!r}")
        if self.init is not None and self.init not in INITS:
            raise UserError(f"unknown init {self.init!r}; valid: {', '.join(INITS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"lr must be > 0 (or None for the optimiser's default), got {self.lr!r}")
        if not isinstance(self.weights, LossWeights):
            raise UserError(f"weights must be a stablestyle.losses.LossWeights, got {type(self.weights).__name__}")
        from ..flow import FLOW_METHODS

        if self.flow_method not in FLOW_METHODS:
            raise UserError(f"unknown flow method {self.flow_method!r}; valid: {', '.join(sorted(FLOW_METHODS))}")
        offsets = self.long_term_offsets
        if (not offsets or 1 not in offsets or len(set(offsets)) != len(offsets)
                or not all(isinstance(j, int) and j >= 1 for j in offsets)):
            raise UserError(f"long_term_offsets must be distinct integers >= 1 including 1 (e.g. 1, 2, 4), "
                            f"got {offsets!r}")
        for name in ("content_layers", "style_layers"):
            layers = getattr(self, name)
            unknown = [layer for layer in layers if layer not in LAYER_INDEX]
            if not layers or unknown:
                raise UserError(f"{name} {unknown or '(none)'} not valid; choose from {', '.join(LAYER_INDEX)}")

    @property
    def step_size(self) -> float:
        """``lr``, or the optimiser's default (:data:`DEFAULT_LR`)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def as_dict(self) -> dict:
        """Plain dict (for saving beside a run's results)."""
        return asdict(self)
