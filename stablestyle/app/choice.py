"""The styles the page offers and the one function that turns a style and a stability choice into models.

:func:`models_for` is the only place where the choice is made.  The stability is the dial of
:mod:`stablestyle.stability`: a number from 0 (the per-frame twin) to 1 (the stable model), or one of the
names in :data:`STABILITIES` for the two ends.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

#: Names of the dial's two ends (the page's slider sends numbers; the API takes either).
STABILITIES = {"stable": 1.0, "per-frame": 0.0}
#: The page's slider: from, to, step.
DIAL = (0.0, 1.0, 0.25)
PER_FRAME_SUFFIX = "-perframe"


def bundled_styles() -> list[str]:
    """Bundled styles that have both a stable model and its per-frame twin (``scream``, ``udnie``, ...)."""
    from ..bundled import available

    names = set(available())
    return sorted(n for n in names if "-" not in n and f"{n}{PER_FRAME_SUFFIX}" in names)


def parse_stability(stability: str | float) -> float:
    """The dial position of ``stability``: a name of :data:`STABILITIES` or a number in [0, 1]."""
    if str(stability) in STABILITIES:
        return STABILITIES[str(stability)]
    try:
        value = float(stability)
    except (TypeError, ValueError):
        value = float("nan")
    if not DIAL[0] <= value <= DIAL[1]:  # NaN fails too
        raise UserError(f"unknown stability {stability!r}; valid: a number from 0 (per-frame) to 1 (stable), "
                        f"or {', '.join(STABILITIES)}")
    return value


def check_choice(style: str | Path, stability: str | float) -> None:
    """A :class:`UserError` listing the valid values for an unknown style or stability."""
    parse_stability(stability)
    if not isinstance(style, Path) and style not in bundled_styles():
        raise UserError(f"unknown style {style!r}; valid: {', '.join(bundled_styles())}, or upload a checkpoint")


def model_for(style: str | Path, stability: str | float) -> str:
    """The checkpoint (a bundled name or a file) behind ``style`` at ``stability``: the per-frame twin at 0,
    the stable model otherwise (mixed with its twin below 1); an uploaded checkpoint is itself."""
    check_choice(style, stability)
    if isinstance(style, Path):
        return str(style)
    return f"{style}{PER_FRAME_SUFFIX}" if parse_stability(stability) == 0 else style


def models_for(style: str | Path, stability: str | float) -> tuple[dict, str]:
    """``({label: (name, model, meta)}, primary label)``: the models a job runs, loaded with the CLI's safe
    loader.

    The chosen model is compared with the style's per-frame model when that is a different one, so the page
    can show what stability buys; an uploaded checkpoint runs alone.
    """
    from ..checkpoint import load_checkpoint
    from ..stability import load_at_stability

    chosen, s = model_for(style, stability), parse_stability(stability)
    if isinstance(style, Path) or s in (0.0, 1.0):
        model, meta = load_checkpoint(chosen)
    else:
        model, meta = load_at_stability(chosen, s)
        chosen = f"{chosen}@{s:g}"
    primary = "stable" if bool(meta["model"].get("recurrent", True)) else "per-frame"
    models = {primary: (Path(chosen).stem if isinstance(style, Path) else chosen, model, meta)}
    if not isinstance(style, Path) and primary != "per-frame":
        baseline = model_for(style, "per-frame")
        models = {"per-frame": (baseline, *load_checkpoint(baseline)), **models}
    return models, primary


def thumbnail(style: str, side: int = 160) -> bytes:
    """A JPEG thumbnail of ``style``: its painting from ``$STABLESTYLE_ASSETS/styles`` when there, else the
    demo clip's first frame in that style (so the gallery works without the assets)."""
    import io

    from PIL import Image

    from ..paths import assets_dir

    check_choice(style, "stable")
    assets = assets_dir()
    painting = None if assets is None else assets / "styles" / f"{style}.jpg"
    if painting is not None and painting.is_file():
        with Image.open(painting) as img:
            image = img.convert("RGB")
    else:
        image = Image.fromarray(_styled_sample(style))
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _styled_sample(style: str):
    from ..checkpoint import load_checkpoint
    from ..paths import sample_video
    from ..stylize import stylize_frames
    from ..video import open_source

    with open_source(sample_video(), max_size=256) as src:
        frame = next(iter(src))
    return next(iter(stylize_frames(load_checkpoint(model_for(style, "stable"))[0], [frame])))
