"""stablestyle: flicker-free neural style transfer for video.

Implements *Characterizing and Improving Stability in Neural Style Transfer*
(Gupta, Johnson, Alahi, Fei-Fei, ICCV 2017): a recurrent feed-forward
transformation network trained with VGG-16 perceptual losses plus a
flow-based temporal loss, the paper's stability analysis of style images,
and its evaluation (instability, style / content loss, speed).

Conventions (used by every module of the package)
-------------------------------------------------
* Images: ``float32`` RGB in ``[0, 1]``, shape ``(B, 3, H, W)``; clips
  ``(B, T, 3, H, W)``.  ``uint8 <-> float`` conversion happens only in the I/O
  layer (:mod:`stablestyle.video`), where frames are ``(H, W, 3)`` ``uint8``
  RGB numpy arrays.
* Flow: ``(B, 2, H, W)`` in pixels, channel 0 = x (right), 1 = y (down).
  The direction is in the name: ``flow_bw`` takes frame ``t`` back to
  ``t-1`` (pixel ``x`` of frame ``t`` is seen at ``x + flow_bw(x)`` in frame
  ``t-1``; this is what warping the previous output needs), ``flow_fw`` the
  other way.  Numpy flow (``.flo`` files, estimators) is ``(H, W, 2)``.
* Masks: ``(B, 1, H, W)``, 1 = valid / not occluded; reduce with
  :func:`stablestyle.losses.masked_mean`.
* Recurrent state is explicit: ``forward(frame, state) -> (out, state)``
  with ``state=None`` at the start of a clip.
* User mistakes raise :class:`stablestyle.errors.UserError`; the CLI turns it
  into a one-line ``error: ...`` and exit status 2.
* Machine-specific paths come from environment variables, read in one place:
  :mod:`stablestyle.paths`.
"""

__version__ = "0.1.0"
