"""The styles the page offers and the one function that turns a style and a stability choice into models.

:func:`model_for` is the only place where the choice is made, so a stability dial (a float from 0, per-frame,
to 1, stable) only has to change it and :data:`STABILITIES`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

#: The stability choices the page offers, in its order.
STABILITIES = ("stable", "per-frame")
PER_FRAME_SUFFIX = "-perframe"


def bundled_styles() -> list[str]:
    """Bundled styles that have both a stable model and its per-frame twin (``scream``, ``udnie``, ...)."""
    from ..bundled import available

    names = set(available())
    return sorted(n for n in names if "-" not in n and f"{n}{PER_FRAME_SUFFIX}" in names)


def check_choice(style: str | Path, stability: str) -> None:
    """A :class:`UserError` listing the valid values for an unknown style or stability."""
    if stability not in STABILITIES:
        raise UserError(f"unknown stability {stability!r}; valid: {', '.join(STABILITIES)}")
    if not isinstance(style, Path) and style not in bundled_styles():
        raise UserError(f"unknown style {style!r}; valid: {', '.join(bundled_styles())}, or upload a checkpoint")


def model_for(style: str | Path, stability: str) -> str:
    """The model (a bundled name or a checkpoint file) that renders ``style`` at ``stability``.

    A bundled style is its stable model or its per-frame twin; an uploaded checkpoint (a :class:`Path`) is
    itself, whatever the choice (it was trained one way).
    """
    check_choice(style, stability)
    if isinstance(style, Path):
        return str(style)
    return style if stability == "stable" else f"{style}{PER_FRAME_SUFFIX}"


def models_for(style: str | Path, stability: str) -> tuple[dict, str]:
    """``({label: (name, model, meta)}, primary label)``: the models a job runs, loaded with the CLI's safe
    loader.

    The chosen model is compared with the style's per-frame model when that is a different one, so the page
    can show what stability buys; an uploaded checkpoint runs alone.
    """
    from ..checkpoint import load_checkpoint

    chosen = model_for(style, stability)
    model, meta = load_checkpoint(chosen)
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
