"""After training: predict new audio with a finished trial, draw its front-end, export its learned parameters.

One job per module, each usable on its own (``predict.py`` at the repository root is the command line):

* :mod:`inference.checkpoint`: pick a finished trial of a Tune experiment and rebuild its model from the
  final checkpoint (``config.json``, ``best_model.pt``, ``classes.json``), trained or as it started.
* :mod:`inference.audio`: find audio files and read each one as the trial's corpus read its clips.
* :mod:`inference.predict`: segment, classify and aggregate clips as ``training.loop.evaluate`` does.
* :mod:`inference.render`: PNGs of the front-end's output (initial beside trained) and of what it learned.
* :mod:`inference.export`: the learned front-end parameters as ``frontend.npz`` + ``frontend.json``.

Every problem a user can fix raises :class:`inference.checkpoint.PredictError`, whose message is one line
naming the problem and the fix. See docs/predict.md.
"""
