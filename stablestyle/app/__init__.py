"""``stablestyle app``: the local web page (standard library only, no network calls, no analytics).

* :mod:`.limits` — upload size, clip duration and frame size limits, and the input checks that use them;
* :mod:`.choice` — the styles on offer and :func:`~.choice.model_for`, the one place a style and a
  stability choice become a model;
* :mod:`.pipeline` — one visitor's job: both models over the clip, the demo folder, the report;
* :mod:`.jobs` — the job queue (one job per worker, a worker per CPU), progress, cancelling, clean-up;
* :mod:`.server` — the HTTP server and its JSON API; ``page.html`` is the page itself.
"""
