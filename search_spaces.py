"""Named Ray Tune search spaces, one registered function per experiment (``main.py --name``).

Each function takes ``max_epochs`` and returns a ``param_space`` dict whose keys are trial
config keys (see ``training/config.py``); ``tune.grid_search`` marks the grid axes. Its
``@register_experiment`` says the rest: the GPU share of a trial, the figures module, the full run's
budget, the parts of an experiment of several Tune runs (``tuning/experiments.py``). Adding an
experiment is adding one decorated function (docs/extending.md).
"""
from ray import tune

from tuning.experiments import Part, register_experiment

SIGMA_REF = 6.38  # samples: the pulse width of the synthetic data
FSDD_RATE = 8000  # Hz
DMEL_WINDOWS_MS = [10.0, 35.0, 300.0]  # the initial windows 6 lambda of the paper's Tables 2 and 3
# What every paper grid shares with the DMEL code (its search_spaces.py, branch icassp2024): windows of
# peak 1 (normalize_window: False) and one data split for every repetition (its generator seeded 0), so a
# table's spread is over initialisations and batch orders only. tests/test_paper_settings.py pins them.
PAPER = {"normalize_window": False, "split_seed": 0}


@register_experiment(gpu_share=1 / 8, figures="figures.time_frequency", full_epochs=10000)
def time_frequency(max_epochs):
    """DMEL paper, Table 4: Gaussian pulses, LNet (``linear_net``), DSPEC trainable vs fixed at 0.2, 1 and
    5 sigma_ref, the DMEL code's settings (``--set model_name=[linear_net,conv_net]`` adds the conv head)."""
    return {
        **PAPER,
        "dataset_name": "time_frequency",
        "model_name": "linear_net",
        "trainable": tune.grid_search([True, False]),
        "init_lambd": tune.grid_search([f * SIGMA_REF for f in (0.2, 1.0, 5.0)]),
        "window_mode": "full",
        "hop_length": 1,
        "optimizer_name": "sgd",
        "lr_model": 1e-3,
        "lr_tf": 1.0,
        "batch_size": 128,
        "max_epochs": max_epochs,
        "patience": 100,
        "n_samples": 5000,
        "n_points": 128,
        "sigma_ref": SIGMA_REF,
        "noise_std": 0.5,
    }


def _audio_mnist_common(max_epochs):
    """Settings shared by the FSDD grids (the DMEL study's earlier speech experiment, 8 kHz: the DMEL code's
    ``audio_mnist`` settings on FSDD, recordings of 1,500-5,500 samples padded at the end to 5,500)."""
    return {
        **PAPER,
        "dataset_name": "audio_mnist",
        "protocol": "dmel",
        "sample_rate": FSDD_RATE,
        "n_points": 5500,
        "model_name": "mel_linear_net",
        "window_mode": "optimized",
        "hop_length": 80,  # 10 ms
        "n_mels": 64,
        "optimizer_name": "adam",
        "lr_model": 1e-4,
        "lr_tf": 1.0,
        "batch_size": 64,
        "max_epochs": max_epochs,
        "patience": 100,
    }


@register_experiment(gpu_share=1 / 8, figures="figures.audio_mnist", full_epochs=1000,
                     budget_env="AUDIO_MAX_EPOCHS", aliases=("fsdd",))
def audio_mnist(max_epochs):
    """DMEL paper, Table 3 layout on FSDD: LNet (``mel_linear_net``), DMEL trainable vs fixed at 10, 35 and
    300 ms windows (lambda = 8000 ms / 6000 samples, as the code; ``--set model_name=[mel_linear_net,mel_conv_net]``
    adds the conv head)."""
    return {
        **_audio_mnist_common(max_epochs),
        "trainable": tune.grid_search([True, False]),
        "init_lambd": tune.grid_search([FSDD_RATE * (ms / 1000) / 6 for ms in DMEL_WINDOWS_MS]),
    }


@register_experiment(gpu_share=1 / 8, figures="figures.audio_mnist", full_epochs=1000,
                     budget_env="AUDIO_MAX_EPOCHS")
def audio_mnist_reference(max_epochs):
    """A row the paper lacks: the same classifier on torchaudio's fixed 25 ms Hann log-mel."""
    return {**_audio_mnist_common(max_epochs), "frontend": "torchaudio_mel", "fixed_win_ms": 25.0,
            "trainable": False}


BENCH_WINDOW_MS = 25.0  # the front-end bench's common (initial) window length


@register_experiment(gpu_share=1 / 8, figures="figures.frontends", full_epochs=1000, budget_env="AUDIO_MAX_EPOCHS")
def frontends(max_epochs):
    """The front-end bench: every front-end of the registry on FSDD with the same classifier (the conv head).

    Every front-end starts at a 25 ms window, 64 bands and hop 10 ms: torchaudio's fixed mel (Hann, log;
    and with learnable PCEN instead of the log), DMEL trainable and fixed (6 lambda = 25 ms), Ada-STFT
    (Hann window learned, n_fft 256 = 32 ms), a trainable mel filterbank, LEAF, EfficientLEAF (with sPCEN,
    and with its own log1p + temporal batch norm), SincNet and DSTFT (the Gaussian window's width learned
    per frame), each output standardised per example.
    ``--set model_name=...`` swaps the head
    for all of them; the music grids and ESC-50 take any of them through ``--set frontend=...``.
    """
    ms = BENCH_WINDOW_MS
    variants = [
        {"frontend": "torchaudio_mel", "trainable": False, "fixed_win_ms": ms},
        {"frontend": "torchaudio_mel", "trainable": False, "fixed_win_ms": ms, "compression": "pcen"},
        {"frontend": "gaussian", "trainable": True, "init_window_ms": ms},
        {"frontend": "gaussian", "trainable": False, "init_window_ms": ms},
        {"frontend": "adastft", "n_fft": 256, "learn_window": True, "learn_kernels": False},
        {"frontend": "trainable_mel", "fixed_win_ms": ms},
        {"frontend": "leaf", "leaf_window_ms": ms},
        {"frontend": "efficientleaf", "leaf_window_ms": ms},
        {"frontend": "efficientleaf", "leaf_window_ms": ms, "leaf_compression": "log_tbn"},
        {"frontend": "sincnet"},
        {"frontend": "dstft", "init_window_ms": ms, "dstft_variation": "time"},
    ]
    # Each front-end's output is standardised per example before the shared head: their scales differ by
    # orders of magnitude (log-mel down to ln 1e-10 = -23, PCEN about 0-2), and unstandardised the log
    # front-ends do not train (docs/benchmarks.md, "The front-end bench without standardisation").
    return {**_audio_mnist_common(max_epochs), "model_name": "mel_conv_net", "standardize": True,
            "variant": tune.grid_search(variants)}


MUSIC_RATE = 22050  # Hz, GTZAN and FMA
# The music grids share GPUs three trials to one. A trainable DMEL window may grow to the clip
# length (n_fft 2**20 at 30 s); the ceiling keeps n_fft <= 32768 (1 s at 22,050 Hz), 3.3x the
# longest initial window, so one trial cannot take its neighbours' memory. lambda at the ceiling
# shows in lambd_ms. Kernels stay deterministic (bit-exact resume); --set deterministic=False
# lets cuDNN autotune ResNet18 for speed instead.
MUSIC_GPU_SETTINGS = {"max_window_ms": 1000.0, "deterministic": True}


def _dmel_variants(windows_ms: list[float]) -> list[dict]:
    """DMEL trainable and fixed at each initial window length 6 lambda (ms, so any sample rate works)."""
    return [{"frontend": "gaussian", "trainable": trainable, "init_window_ms": ms}
            for trainable in (True, False) for ms in windows_ms]


@register_experiment(gpu_share=1 / 3, figures="figures.gtzan", full_epochs=200, budget_env="GTZAN_MAX_EPOCHS")
def gtzan(max_epochs):
    """Every front-end in one grid on GTZAN (fault-filtered split), ResNet18, Ada-STFT training settings.

    Front-ends: DMEL trainable/fixed at 10, 46.4 (n_fft 1024) and 300 ms; Ada-STFT (Hann, n_fft 1024) with the
    window learned, and with window and DFT kernels learned; torchaudio's fixed mel (Hann 1024).
    All give 128 mel bands at hop 512 (23 ms). Whole clips (split_parts 1) and 2.5 s crops with
    12-segment voting (split_parts 12).
    """
    ada = [{"frontend": "adastft", "trainable": True, "stft_window": "hann", "n_fft": 1024, "learn_window": True,
            "learn_kernels": kernels} for kernels in (False, True)]
    fixed = [{"frontend": "torchaudio_mel", "trainable": False, "fixed_win_ms": 1000 * 1024 / MUSIC_RATE}]
    return {
        "dataset_name": "gtzan",
        "protocol": "filtered",
        "sample_rate": MUSIC_RATE,
        "clip_seconds": 30.0,
        "model_name": "resnet18",
        "variant": tune.grid_search(_dmel_variants([10.0, 1000 * 1024 / MUSIC_RATE, 300.0]) + ada + fixed),
        "split_parts": tune.grid_search([1, 12]),
        "train_segments": "random_crop",
        "window_mode": "optimized",
        "hop_length": 512,
        "n_mels": 128,
        "optimizer_name": "adamw",
        "lr_model": 0.004217,
        "lr_tf": 1.0,
        "weight_decay": 0.01,
        "lr_gamma": 0.99745,
        "batch_size": 16,
        "max_epochs": max_epochs,
        "patience": 20,
        **MUSIC_GPU_SETTINGS,
    }


@register_experiment(gpu_share=1 / 3, figures="figures.fma", full_epochs=100, budget_env="FMA_MAX_EPOCHS")
def fma(max_epochs):
    """FMA genre recognition (fma_small, official split) with the FMA system's 4-layer CNN.

    Front-ends: the FMA system's fixed log-mel (Hann 2048, dB with top_db 80) and DMEL trainable/
    fixed at 10, 93 (n_fft 2048) and 300 ms; 128 mels, hop 512, every front-end standardised per
    example. 3 s segments (all ten per clip, shuffled; batch 16; track = mean of its segments'
    logits) and whole 30 s clips (batch 4). Adam 1e-3, early stopping on validation loss.
    """
    fixed = [{"frontend": "torchaudio_mel", "trainable": False, "fixed_win_ms": 1000 * 2048 / MUSIC_RATE,
              "top_db": 80.0}]
    return {
        "dataset_name": "fma",
        "fma_subset": "small",
        "sample_rate": MUSIC_RATE,
        "clip_seconds": 30.0,
        "model_name": "fma_cnn",
        "variant": tune.grid_search(fixed + _dmel_variants([10.0, 1000 * 2048 / MUSIC_RATE, 300.0])),
        "variant_segments": tune.grid_search([{"segment_seconds": 3.0, "batch_size": 16},
                                              {"segment_seconds": 30.0, "batch_size": 4}]),
        "train_segments": "all",
        "standardize": True,
        "window_mode": "optimized",
        "hop_length": 512,
        "n_mels": 128,
        "optimizer_name": "adam",
        "lr_model": 1e-3,
        "lr_tf": 1.0,
        "max_epochs": max_epochs,
        "patience": 10,
        **MUSIC_GPU_SETTINGS,
    }


DMEL_RATE = 8000  # Hz: the DMEL code resamples ESC-50 and AudioMNIST to 8 kHz


def _dmel_paper_common(max_epochs):
    """What the DMEL code's ESC-50 and AudioMNIST search spaces share (its ``search_spaces.py``, ICASSP 2024
    version): 8 kHz, the optimized power-of-two window of peak 1, hop 10 ms (``int(8000 * 0.010)`` = 80
    samples), 64 mels, log, Adam with lambda at lr 1.0 and the network at 1e-4, patience 100, one split
    for every repetition; DMEL trainable vs fixed at 10, 35 and 300 ms."""
    return {
        **PAPER,
        "sample_rate": DMEL_RATE,
        "trainable": tune.grid_search([True, False]),
        "init_window_ms": tune.grid_search(DMEL_WINDOWS_MS),
        "window_mode": "optimized",
        "hop_length": DMEL_RATE * 10 // 1000,  # 10 ms
        "n_mels": 64,
        "optimizer_name": "adam",
        "lr_model": 1e-4,
        "lr_tf": 1.0,
        "max_epochs": max_epochs,
        "patience": 100,
    }


@register_experiment(gpu_share=1 / 4, figures="figures.esc50", full_epochs=100, budget_env="ESC50_MAX_EPOCHS")
def esc50(max_epochs):
    """DMEL paper, Table 2: ESC-50 with PANNs CNN6 from scratch, DMEL trainable vs fixed at 10, 35 and 300 ms.

    The DMEL code's random 70/10/20 split (protocol dmel), 5 s clips at 8 kHz, sigmoid + binary
    cross-entropy (its CNN6 loss), batch 32, early stopping after 100 epochs without a lower validation
    loss (the code's patience; the paper trains 100 epochs, --max_epochs=100, the code's script 1,000). The 1 s window ceiling only guards a shared
    GPU's memory (the paper's learned windows are 25-153 ms).
    """
    return {
        **_dmel_paper_common(max_epochs),
        "dataset_name": "esc50",
        "protocol": "dmel",
        "clip_seconds": 5.0,
        "model_name": "cnn6",
        "loss": "bce",
        "batch_size": 32,
        "max_window_ms": 1000.0,
    }


@register_experiment(gpu_share=1 / 4, figures="figures.esc50", full_epochs=100, budget_env="ESC50_MAX_EPOCHS")
def esc50_folds(max_epochs):
    """The ``esc50`` grid on the official 5-fold protocol (``fold`` 1-5 a grid axis; the table reports
    the mean over folds), so the DMEL numbers compare with the ESC-50 literature."""
    return {**esc50(max_epochs), "protocol": "fold", "fold": tune.grid_search([1, 2, 3, 4, 5])}


@register_experiment(gpu_share=1 / 8, figures="figures.audiomnist60", full_epochs=100,
                     budget_env="AUDIOMNIST_MAX_EPOCHS")
def audiomnist60(max_epochs):
    """DMEL paper, Table 3: AudioMNIST (60 speakers; not FSDD's ``audio_mnist``), the DMEL code's speaker
    split (36/12/12), 1 s at 8 kHz with each recording centred, LNet (``mel_linear_net``), DMEL trainable vs
    fixed at 10, 35 and 300 ms; batch 64 (the DMEL code's AudioMNIST settings).
    ``--set model_name=[mel_linear_net,mel_conv_net]`` adds the conv head (``--set standardize=True`` is the
    fix that makes it learn)."""
    return {
        **_dmel_paper_common(max_epochs),
        "dataset_name": "audiomnist60",
        "protocol": "dmel",
        "clip_seconds": 1.0,  # the DMEL code's n_points 8000 at 8 kHz
        "clip_padding": "center",  # np.pad(x, 1 + (8000 - len(x)) // 2)[:8000]
        "model_name": "mel_linear_net",
        "batch_size": 64,
    }


@register_experiment(gpu_share=1 / 8, figures="figures.window_search", full_epochs=100, full_samples=30,
                     budget_env="AUDIO_MAX_EPOCHS",
                     parts={"search": Part("optuna", "asha"), "trainable": Part("grid", "fifo", 1)})
def window_search(max_epochs):
    """The DMEL paper's cost argument, measured on FSDD: the best *fixed* DMEL window found by search
    against one trainable DMEL run per initial window. One classifier (``mel_linear_net``, the cheapest),
    the FSDD grid's settings, seed 0 for every trial. Two parts (its ``parts``), each a Tune experiment in
    ``<storage>/window_search/<part>``, run in order by one command:

    - ``search``: DMEL fixed, window 6 lambda log-uniform in 5-500 ms; ``--num_samples`` trials,
      Optuna TPE with ASHA by default (``--search``/``--scheduler`` replace them);
    - ``trainable``: DMEL trainable from 10, 35 and 300 ms, one run each.
    """
    fsdd = {**_audio_mnist_common(max_epochs), "model_name": "mel_linear_net", "frontend": "gaussian", "seed": 0}
    return {"search": {**fsdd, "trainable": False, "init_window_ms": tune.loguniform(5.0, 500.0)},
            "trainable": {**fsdd, "trainable": True, "init_window_ms": tune.grid_search(DMEL_WINDOWS_MS)}}


TRANSFER_PER_CLASS = [1, 2, 5, 10, 20, None]  # train examples per class (None: the whole train split)


@register_experiment(gpu_share=1 / 8, figures="figures.transfer", full_epochs=1000, budget_env="AUDIO_MAX_EPOCHS")
def transfer(max_epochs):
    """Accuracy against training examples per class on FSDD: pretrained musicnn embeddings, MFCC and fixed log-mel
    statistics (scikit-learn RBF SVMs) against DMEL trainable and fixed and a fixed mel trained from scratch.

    Each of 1, 2, 5, 10, 20 and all examples per class is a seeded stratified subset of the train split (the
    same clips for every method of one seed; valid and test whole). The embeddings are standardised per
    dimension before the SVM (C=1, gamma scale: the recipe's SVM). musicnn (MSD, ``max_pool``, the recipe's
    layer) reads 1 s patches: FSDD's recordings are under 1 s, and a 3 s patch would be two thirds silence.
    The neural runs train the FSDD grids' LNet (``mel_linear_net``) on standardised 25 ms / 64-band / 10 ms
    spectrograms from scratch, at lr 1e-3 with patience 10 (at the grids' 1e-4, one example per class is one
    small step per epoch). The weights come from ``sh download_data.sh musicnn``.
    """
    ms = BENCH_WINDOW_MS
    head = {"classifier": "svm_rbf", "standardize_rows": True}
    variants = [
        {**head, "embedding": "musicnn", "embedding_model": "MSD_musicnn", "embedding_layer": "max_pool",
         "patch_seconds": 1.0},
        {**head, "embedding": "mfcc"},
        {**head, "embedding": "logmel"},
        {"frontend": "gaussian", "trainable": True, "init_window_ms": ms},
        {"frontend": "gaussian", "trainable": False, "init_window_ms": ms},
        {"frontend": "torchaudio_mel", "trainable": False, "fixed_win_ms": ms},
    ]
    return {**_audio_mnist_common(max_epochs), "standardize": True, "lr_model": 1e-3, "patience": 10,
            "train_per_class": tune.grid_search(TRANSFER_PER_CLASS), "variant": tune.grid_search(variants)}


@register_experiment(gpu_share=0, figures="figures.embedding_heads", full_epochs=1, full_samples=1)
def embedding_heads(max_epochs):
    """The transfer-learning recipe's procedure on precomputed embeddings (``--data_dir`` holding its ``.npz``
    files): each scikit-learn head at the recipe's defaults, with and without PCA whitening to 32 dimensions,
    fitted on every training patch (``valid_share=0``), one majority vote per test clip."""
    return {
        "dataset_name": "embeddings",
        "embedding": "precomputed",
        "valid_share": 0.0,
        "classifier": tune.grid_search(["svm_linear", "svm_rbf", "logreg", "knn", "mlp"]),
        "pca_components": tune.grid_search([None, 32]),
        "max_epochs": max_epochs,
    }


@register_experiment(gpu_share=1 / 4, figures="figures.deepspectrum", full_epochs=100, budget_env="AUDIO_MAX_EPOCHS")
def deepspectrum(max_epochs):
    """DeepSpectrumLite's recipe on FSDD: spectrograms rendered as viridis colour images (dB, min-max, 128 x 128
    bilinear anti-aliased, ImageNet normalisation) into torchvision's mobilenet_v2 and resnet18, from a fixed
    mel (25 ms Hann, 64 bands, 10 ms hop) and from DMEL trainable (initial window 25 ms, learning through the
    image). From scratch (no weights here: ``--set weights_path=... --set cnn=... --set pre_epochs=...`` with
    your own, docs/configuration.md). Adam at 1e-3, batch 32, patience 10. The images are 128 pixels (the seed's
    224 is ``--set image_height=224 --set image_width=224``) so a CPU can run the grid.
    """
    ms = BENCH_WINDOW_MS
    variants = [
        {"frontend": "torchaudio_mel", "trainable": False, "fixed_win_ms": ms},
        {"frontend": "gaussian", "trainable": True, "init_window_ms": ms},
    ]
    return {**_audio_mnist_common(max_epochs), "model_name": "imagenet", "cnn": tune.grid_search(["mobilenet_v2", "resnet18"]),
            "image_colormap": "viridis", "image_height": 128, "image_width": 128, "image_db": True,
            "lr_model": 1e-3, "batch_size": 32, "patience": 10, "variant": tune.grid_search(variants)}
