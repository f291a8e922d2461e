"""Simulated multi-subject EEG with known neural correlates.

The simulator is the embedded default data set of eegcrp (``eegcrp demo``) and the ground
truth against which explanations are checked: every class difference is planted by a
known source, in a known frequency band and time window, and every artefact is a known
source with its own spatial pattern.

Signal model (per subject and channel; all amplitudes in µV, returned in volts)::

    x = background + rhythms (task-modulated) + artefacts + line noise + sensor noise

* **Continuous recording.** Each subject is one continuous recording: its ``n_trials``
  trials of ``trial_duration`` s back to back, with ``margin`` s of the same signal before
  the first and after the last trial, so that preprocessing filters real context (not
  padding) at every trial edge. Every component below is synthesised over the whole
  recording; the loader returns it as a :class:`~eegcrp.data.recording.Recording` and
  :meth:`SimulatedLoader.load` / :func:`simulate` cut the raw trials.

* **Forward model.** Electrodes are the 10-05 positions of the ``standard_1005`` montage
  projected onto a sphere fitted to them (radius ~10 cm). Sources are current dipoles
  inside that sphere, placed below an anchor electrode at a given depth (fraction of the
  radius), radially oriented unless stated. Their scalp potential is the exact solution
  for a dipole in a *homogeneous* conducting sphere (Legendre-series expansion, truncated
  when the terms fall below 1e-12). This ignores the poorly conducting skull, which in a
  real head smears potentials; the sources are therefore placed deeper than they are
  (brain 0.45-0.55, eyes and muscles 0.6-0.65 of the radius), which gives maps about as
  broad as three-shell models give for cortical sources (half maximum at the 10-10
  neighbours of the peak electrode). Each pattern is scaled so that its largest absolute
  value over all 343 10-05 electrodes is 1, so amplitudes mean "µV at the peak electrode"
  for any channel subset. No fsaverage, BEM or MRI is needed; the series agrees with
  MNE's sphere-model forward solution (tested).
* **Background.** Spatially correlated 1/f noise: one 1/f^beta time series per channel
  (beta ~1.4, per subject 1.0-1.8, synthesised in the frequency domain) mixed with the
  Cholesky factor of the covariance exp(-d/lambda) of electrode distances d, which is the
  covariance a dense sheet of random, independent distant sources produces to first order.
  RMS 10 µV per channel times the subject's gain.
* **Rhythms.** Narrow-band sources (Gaussian spectral peak, waxing and waning like real
  rhythms): mu (8-12 Hz) and beta (18-26 Hz) over left and right sensorimotor cortex
  (below C3, C4), alpha (8-12 Hz) over left and right parieto-occipital cortex (PO7, PO8)
  and the posterior midline (POz), frontal-midline theta (4-8 Hz, below Fz). All exist in
  every paradigm; only the paradigm's effects modulate them. Their RMS at the peak
  electrode is ``snr`` x the background RMS (beta 0.6x, lateral alpha 0.8x, midline
  alpha 1.2x, theta 0.7x).
* **Effects.** Within ``effect_window`` (seconds from trial onset; cosine ramps of up to
  0.25 s at both ends) the band power of a source is multiplied by ``1 + effect_size``
  (synchronisation) or divided by it (desynchronisation) in the trials of one class:

  - motor_imagery (left_hand / right_hand): mu and beta desynchronise over the
    sensorimotor cortex contralateral to the imagined hand (left hand: C4, right: C3).
  - auditory_attention (left_ear / right_ear): alpha increases over the parieto-occipital
    cortex ipsilateral to the attended ear (left ear: PO7 side, right ear: PO8 side).
  - internal_attention (internal / external): posterior-midline alpha and frontal-midline
    theta increase during internal attention.
* **Artefacts.** Separate sources with their own patterns and Poisson-distributed events:
  eye blinks (frontal, 0.3 s bumps of ~100 µV), horizontal saccades (frontal, opposite
  polarity left/right, steps of ~50 µV) and temporal muscle bursts (broadband > 20 Hz,
  ~25 µV RMS). ``confound`` multiplies one artefact's rate in one class by
  ``1 + strength``, so a model can cheat through it (margins use the base rate). Per-trial
  counts of the events starting in a trial are the metadata columns ``blinks``,
  ``saccades`` and ``muscle_bursts``.
* **Line and sensor noise.** A continuous mains sinusoid (``mains_freq``, default 50 Hz; ~2 µV,
  varying over channels) and white sensor noise (1 µV RMS).
* **Subjects.** Each subject draws gain, 1/f exponent, spatial correlation length, peak
  frequencies (alpha/mu 8.5-12 Hz), effect strength, source position and orientation
  jitter and artefact amplitudes (all scaled by ``variability``); a fraction
  ``weak_fraction`` of subjects has a weak or no effect (0-25 % strength).

Modules: :mod:`.forward` (geometry, sources, dipole potentials), :mod:`.model` (rhythms,
effects, artefacts, subject parameters), :mod:`.generator` (signals), :mod:`.truth`
(:class:`GroundTruth`), :mod:`.loader` (:class:`SimulatedLoader`, :func:`simulate`).

Randomness: subject *k* is generated from ``SeedSequence([seed, k])`` alone (one child
stream for parameters and one per signal component), so one subject can be simulated on
its own and the data are byte-identical to those of a full run; switching one component
off (e.g. ``blink_rate=0``) leaves every other component unchanged.
"""

from .forward import CHANNEL_PRESETS, dipole_potentials, resolve_channels
from .loader import SimulatedLoader, baseline_accuracy, simulate
from .model import BACKGROUND_UV
from .truth import ArtifactTruth, Contrast, EffectTruth, GroundTruth, SubjectTruth

__all__ = [
    "BACKGROUND_UV",
    "CHANNEL_PRESETS",
    "ArtifactTruth",
    "Contrast",
    "EffectTruth",
    "GroundTruth",
    "SimulatedLoader",
    "SubjectTruth",
    "baseline_accuracy",
    "dipole_potentials",
    "resolve_channels",
    "simulate",
]
