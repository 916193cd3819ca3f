"""Training of the transformation network: Gupta et al. 2017's recurrent net and Johnson et al. 2016's per-frame net.

One loop trains both; the per-frame net is the same code with recurrence
and the temporal loss switched off.  The package, by concept (each module's
docstring says what it owns; a module imports only modules listed above it):

* :mod:`~stablestyle.training.rundir`: the run folder (file names, CSV logs,
  samples, RNG / checkpoint state, stop requests on SIGINT / SIGTERM);
* :mod:`~stablestyle.training.config`: :class:`TrainConfig`, YAML, how flags,
  a config file and a resumed run's saved settings combine;
* :mod:`~stablestyle.training.objective`: the paper's method on one screen:
  :class:`SequenceModel` (the recurrent unroll) and :func:`sequence_loss`
  (perceptual + masked temporal loss);
* :mod:`~stablestyle.training.inputs`: content images, the held-out
  validation image and clip, the dataset, :func:`check_inputs`;
* :mod:`~stablestyle.training.loop`: :func:`fit`, the schedule between steps;
* :mod:`~stablestyle.training.trainer`: :class:`Trainer`, the parts of a run
  and one optimiser step.

A run, as ``stablestyle train`` drives it::

    flags / YAML --new_run_config / resume_config--> TrainConfig --check_inputs--> (files ok)
    Trainer(config): net + SequenceModel, dataset (+ held-out validation clip), VGG-16 + style Grams, Adam
    [Trainer.restore(last.pt)]
    Trainer.fit() = loop.fit: repeat { batch -> SequenceModel -> sequence_loss -> Adam step;
                                       log.csv / val.csv / samples / last.pt when due }
                              -> last.pt (resumable) + final.pt (weights + config)
"""

from .config import (
    AMP_MODES,
    DEFAULT_SEQ_LEN,
    DEVICES,
    MODES,
    RESUME_CHANGEABLE,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    new_run_config,
    resume_config,
    save_config,
)
from .inputs import (
    VAL_SEED,
    build_dataset,
    check_inputs,
    find_content,
    make_validation_clip,
    split_validation,
    validation_image,
)
from .loop import STOP_CHECK_EVERY, fit
from .objective import SequenceModel, centre_window, loss_window, sequence_loss, sequence_terms
from .rundir import (
    CONFIG_NAME,
    LAST_NAME,
    LOG_NAME,
    SAMPLES_NAME,
    VAL_NAME,
    CsvLog,
    clear_run_dir,
    prepare_run_dir,
    rng_state,
    seed_everything,
    set_rng_state,
)
from .trainer import Trainer, TrainingDiverged, resolve_amp

__all__ = [
    "AMP_MODES", "CONFIG_NAME", "DEFAULT_SEQ_LEN", "DEVICES", "LAST_NAME", "LOG_NAME", "MODES", "RESUME_CHANGEABLE",
    "SAMPLES_NAME", "STOP_CHECK_EVERY", "VAL_NAME", "VAL_SEED", "CsvLog", "SequenceModel", "Trainer", "TrainConfig",
    "TrainingDiverged", "build_dataset", "centre_window", "check_inputs", "clear_run_dir", "config_from_dict",
    "config_to_dict", "find_content", "fit", "load_config", "make_validation_clip", "new_run_config", "prepare_run_dir",
    "loss_window", "resolve_amp", "resume_config", "rng_state", "save_config", "seed_everything", "sequence_loss",
    "sequence_terms", "set_rng_state", "split_validation", "validation_image",
]
