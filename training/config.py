"""Every key a trial config may hold, with its default. Unknown keys fail loudly."""
from __future__ import annotations

import difflib

DEFAULTS = {
    # experiment
    "dataset_name": "time_frequency",  # corpus: see corpora.CORPORA (time_frequency | audio_mnist | gtzan | fma | esc50 | audiomnist60)
    "seed": 0,                         # seeds Python, NumPy, torch and the data
    "split_seed": None,                # seeds the train/valid/test split: None = ``seed`` (a new split per repetition) | an int: one split for every repetition (the DMEL code's: 0, the paper grids')
    # model
    "model_name": "linear_net",        # see models.classifiers.MODELS
    "frontend": "gaussian",            # gaussian (DSPEC/DMEL) | torchaudio_mel (fixed Hann) | sincnet | trainable_mel | dstft (mel models)
    "trainable": True,                 # learn lambda; False = fixed-resolution baseline
    "init_lambd": 6.38,                # initial window std, samples
    "init_window_ms": None,            # initial window length 6 lambda in ms (overrides init_lambd; needs audio)
    "min_lambd": 0.5,                  # floor for lambda, samples (the ceiling is the signal length)
    "min_window_ms": None,             # floor for the DMEL window 6 lambda, ms (None: min_lambd only; the higher floor wins)
    "lambd_param": "abs",              # abs: lambda = |parameter| in samples (the paper's) | log: lambda = exp(parameter), never 0; lr_tf is then per log unit (Adam ~ a factor exp(lr_tf) per step: use ~0.075, not 1)
    "tf_warmup_epochs": 0,             # epochs, lambda frozen at the start while the classifier trains (0 = off)
    "window_mode": "full",             # full | optimized
    "normalize_window": False,         # False: Gaussian window of peak 1, as every grid of the DMEL paper (normalize_window: False); True: unit energy
    "hop_length": 1,                   # samples
    "n_mels": 64,
    "fixed_win_ms": 25.0,              # torchaudio_mel and trainable_mel Hann window, ms
    "top_db": None,                    # torchaudio_mel: None = log(. + 1e-10); a number = dB floored top_db below the max
    "n_fft": 1024,                     # adastft: DFT size = window length, samples
    "stft_window": "hann",             # adastft: scipy.signal window name; "hann+hamming+blackman" = one channel each
    "learn_window": True,              # adastft: learn the window coefficients
    "learn_kernels": False,            # adastft: learn the complex DFT kernels
    "sinc_window_ms": 16.0,            # sincnet: band-pass filter length, ms (rounded to an odd number of taps; SincNet: 251 taps at 16 kHz)
    "dstft_variation": "time",         # dstft: the Gaussian window width varies per frame (time) | per FFT bin (frequency) | both (time_frequency) | none (one width); starts at init_window_ms (6 lambda, ms) or init_lambd
    "dstft_max_window_ms": None,       # dstft: ceiling on every window 6 lambda, ms, fixing n_fft = next power of two (None: twice the initial window)
    "compression": "log",              # log: each front-end's own log (today's) | pcen: learnable PCEN (log-space per-band s, alpha, delta, r) on its energies; not for leaf/efficientleaf (they end in sPCEN)
    "leaf_compression": "pcen",        # leaf/efficientleaf: pcen (sPCEN, log-space parameters) | log_tbn: EfficientLEAF's log(1 + 10^a x), a per band, then temporal batch norm | log_tbn_median: the same less each band's temporal median
    "leaf_window_ms": 25.0,            # leaf/efficientleaf: Gabor filter and pooling window, ms (odd number of samples; LEAF: 25)
    "efficientleaf_groups": 8,         # efficientleaf: filter groups, each one strided convolution (EfficientLEAF "8G-opt": 8)
    "efficientleaf_stride_factor": 16.0,  # efficientleaf: a group's convolution stride, samples, is at most this times pi / its highest centre frequency (rad/sample); 1 = Nyquist (EfficientLEAF "opt": 16)
    "standardize": False,              # standardise each example's front-end output (zero mean, unit std)
    "specaugment_freq": 0,             # SpecAugment: widest frequency mask, bins (0 = off); training only
    "specaugment_time": 0,             # SpecAugment: widest time mask, frames (0 = off); training only
    # training
    "optimizer_name": "sgd",           # sgd | adam | adamw
    "momentum": 0.0,                   # sgd momentum
    "weight_decay": 0.0,
    "lr_gamma": 1.0,                   # exponential learning-rate decay per epoch (1 = constant)
    "augment_waveform": False,         # random gain, coloured noise and delay on training waveforms
    "lr_model": 1e-3,
    "lr_tf": 1.0,                      # learning rate of lambda
    "loss": "ce",                      # ce: softmax cross-entropy | bce: sigmoid + binary cross-entropy on one-hot labels (mean over classes; the DMEL code's CNN6)
    "batch_size": 128,
    "max_epochs": 100,
    "patience": 100,                   # epochs without a lower valid loss before stopping
    "checkpoint_every": None,          # epochs between resume checkpoints (None: by time only); always at the end
    "checkpoint_minutes": 5.0,         # minutes between resume checkpoints (whichever of the two comes first)
    # device and speed
    "device": "auto",                  # auto: CUDA exactly when Ray assigned the trial a GPU | cpu | cuda
    "deterministic": True,             # deterministic kernels (bit-exact resume); False lets cuDNN pick the fastest
    "amp": False,                      # bf16 autocast for the classifier head (the front-end stays float32)
    "max_window_ms": None,             # ceiling on the DMEL window 6 lambda, ms (None: the clip length)
    # segments: a clip is cut into split_parts equal segments (or segments of segment_seconds)
    "split_parts": 1,
    "segment_seconds": None,           # s; when set, split_parts = clip_seconds / segment_seconds
    "train_segments": "random_crop",   # random_crop: one random segment per clip and epoch | all: every segment
    # synthetic data
    "n_samples": 5000,
    "n_points": 128,
    "sigma_ref": 6.38,
    "noise_std": 0.5,
    "noise_kind": "uniform",           # uniform (paper code: noise_std * U[0,1)) | gaussian
    "t_center_max_offset": 0.0,
    "f_center_max_offset": 0.0,
    # audio data
    "data_dir": None,                  # dataset root (absolute)
    "protocol": None,                  # split protocol; None = the corpus default (FSDD dmel, GTZAN filtered, ESC-50 dmel, AudioMNIST dmel)
    "fold": 1,                         # ESC-50 protocol "fold": the test fold, 1-5 (the other four train; 1/8 of their source recordings validate)
    "sample_rate": 8000,               # Hz (GTZAN/FMA audio is resampled to it)
    "clip_seconds": 30.0,              # GTZAN/FMA/ESC-50/AudioMNIST: every clip cropped/zero-padded to this length, s
    "clip_padding": "end",             # GTZAN/FMA/ESC-50/AudioMNIST: end: zeros after the recording, crop its end | center: the DMEL code's AudioMNIST, np.pad(x, 1 + (n - len(x)) // 2)[:n] (longer clips: their middle n samples)
    "fma_subset": "small",             # FMA: small (8 genres) | medium (16 genres)
    "cache_dir": None,                 # decoded-audio cache; None = <project>/cache
    "decode_workers": None,            # processes decoding audio into the cache; None = all cores
}


def is_variant(key: str) -> bool:
    """``variant`` and ``variant_*`` keys are grid axes whose values are dicts of config keys set
    together (e.g. a front-end and its settings; see search_spaces.py)."""
    return key == "variant" or key.startswith("variant_")


def resolve_config(config: dict) -> dict:
    """``DEFAULTS`` updated with ``config``, whose variant dicts are merged in last (in key order);
    raises ``KeyError`` naming unknown keys."""
    merged = {k: v for k, v in config.items() if not is_variant(k)}
    for key in sorted(k for k in config if is_variant(k)):
        merged.update(config[key] or {})
    config = merged
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise KeyError(f"unknown config key(s): {', '.join(hints)}; valid keys are listed in training/config.py")
    return {**DEFAULTS, **config}
