"""ImageNet CNNs from torchvision on spectrogram images (DeepSpectrumLite's transfer models).

:class:`ImageNetHead` renders the front-end's spectrogram as a colour image (:class:`models.images.SpectrogramImage`)
and classifies it with any torchvision classification model (``torchvision.models.get_model(cnn)``:
resnet50, densenet121, mobilenet_v2, efficientnet_b0, vgg16, ...), its output layer replaced by one with
``n_classes`` outputs. ``weights_path`` names a local state dict of that architecture (ImageNet weights,
e.g. torchvision's ``resnet50-0676ba61.pth``, or any of your own); without it the CNN trains from scratch.

Freezing then fine-tuning (``pre_epochs``/``freeze_epochs``, ``finetune_layers``, ``fine_learning_rate``)
is the classifier's (:meth:`models.classifiers.Classifier.set_head_training`), so it applies to every head.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn

from models.images import SpectrogramImage

CNNS = ("resnet50", "densenet121", "mobilenet_v2", "efficientnet_b0", "vgg16")  # DeepSpectrumLite's, as torchvision names them
# architectures a state dict is compared with when it does not fit the one asked for (built on the meta device)
GUESSES = (*CNNS, "resnet18", "resnet34", "resnet101", "densenet169", "mobilenet_v3_small", "mobilenet_v3_large",
           "efficientnet_b1", "vgg11", "vgg19", "squeezenet1_1")


def cnn_names() -> list[str]:
    """Every classification model torchvision builds by name."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def check_cnn_name(name: str) -> str | None:
    """One line when torchvision has no classification model ``name``, else ``None``."""
    names = cnn_names()
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=1)
    return (f"cnn={name!r}: not a torchvision classification model" + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; e.g. {', '.join(CNNS)}")


def _output_layer_name(model: nn.Module) -> str:
    """The dotted name of the model's last ``nn.Linear`` (every torchvision classifier ends in one)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear output layer to replace")
    return names[-1]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors saved at ``path``: a state dict, or one under ``state_dict``/``model`` (a training
    checkpoint); of a finished ``imagenet`` trial's ``best_model.pt``, its CNN's (``head.cnn.*``). Raises
    ``ValueError`` with one line for a missing or unreadable file."""
    if not path.is_file():
        raise ValueError(f"weights_path={str(path)!r}: no such file; save the CNN's state dict there "
                         "(torch.save(model.state_dict(), path)) or unset weights_path to train from scratch")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same one line
        raise ValueError(f"weights_path={str(path)!r}: not a torch state dict ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    for key in ("state_dict", "model"):
        if isinstance(saved, dict) and isinstance(saved.get(key), dict):
            saved = saved[key]
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise ValueError(f"weights_path={str(path)!r}: holds no dict of tensors (a state dict)")
    prefix = "head.cnn."  # a finished imagenet trial's best_model.pt: its CNN's tensors
    if any(k.startswith(prefix) for k in saved):
        saved = {k[len(prefix):]: v for k, v in saved.items() if k.startswith(prefix)}
    return saved


def _meta_model(name: str) -> nn.Module:
    """torchvision's ``name`` (1000 classes) on the meta device: its shapes, without memory or initialisation."""
    import torchvision

    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def fit_problem(name: str, state: dict[str, torch.Tensor]) -> str | None:
    """Why the state dict ``state`` does not fit torchvision's ``name`` (its output layer aside, which
    is replaced), naming the architecture it does fit when it is one of :data:`GUESSES`; ``None`` when it fits."""
    model = _meta_model(name)
    want, out_prefix = _shapes(model), _output_layer_name(model) + "."
    body = {k: s for k, s in want.items() if not k.startswith(out_prefix)}
    given = {k: tuple(v.shape) for k, v in state.items() if not k.startswith(out_prefix)}
    missing = sorted(set(body) - set(given))
    unexpected = sorted(set(given) - set(body))
    wrong = sorted(k for k in set(body) & set(given) if body[k] != given[k])
    if not (missing or unexpected or wrong):
        return None
    fits = [other for other in GUESSES if other != name and set(_shapes(_meta_model(other))) == set(state)]
    parts = [f"{len(missing)} missing" if missing else "", f"{len(unexpected)} unexpected" if unexpected else "",
             f"{len(wrong)} of other shapes" if wrong else ""]
    example = (missing or unexpected or wrong)[0]
    hint = f"; it is a {fits[0]} state dict: set cnn={fits[0]!r}" if fits else ""
    return (f"weights do not fit cnn={name!r}: tensors {', '.join(p for p in parts if p)} (e.g. {example!r}){hint}")


def build_cnn(name: str, n_classes: int, weights_path: str | None = None) -> nn.Module:
    """torchvision's ``name`` with ``weights_path``'s tensors (everything but the output layer; none: from
    scratch, torchvision's initialisation) and a new ``n_classes`` output layer (PyTorch's default
    initialisation). Raises ``ValueError`` with one line for an unknown name, a missing or unreadable file,
    or weights of another architecture."""
    import torchvision

    problem = check_cnn_name(name)
    if problem:
        raise ValueError(problem)
    model = torchvision.models.get_model(name, weights=None)
    out_name = _output_layer_name(model)
    if weights_path:
        state = read_state_dict(Path(weights_path))
        problem = fit_problem(name, state)
        if problem:
            raise ValueError(f"weights_path={weights_path!r}: {problem}")
        body = {k: v for k, v in state.items() if not k.startswith(out_name + ".")}
        missing, unexpected = model.load_state_dict(body, strict=False)
        assert not unexpected and all(k.startswith(out_name + ".") for k in missing), (missing, unexpected)
    parent_name, _, child = out_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, nn.Linear(old.in_features, n_classes))
    return model


class ImageNetHead(nn.Module):
    """Spectrogram image (:class:`models.images.SpectrogramImage`) into a torchvision CNN (:func:`build_cnn`).

    Input ``(batch, freq, frames)`` natural-log energies (any front-end's ``compression="log"`` output),
    output ``(batch, n_classes)`` logits. Built from the trial's config (:meth:`from_config`): ``cnn``,
    ``weights_path``, ``image_colormap``, ``image_height``, ``image_width``, ``image_db``.
    """

    def __init__(self, in_shape: tuple[int, ...], n_classes: int, cnn: str = "mobilenet_v2",
                 weights_path: str | None = None, colormap: str = "viridis", height: int = 224, width: int = 224,
                 db: bool = True):
        super().__init__()
        if len(in_shape) != 2:
            raise ValueError(f"model_name='imagenet' renders one spectrogram (freq, frames) per example, got shape "
                             f"{in_shape}; use a front-end with one output channel")
        self.image = SpectrogramImage(colormap, height, width, db)
        self.cnn = build_cnn(cnn, n_classes, weights_path)

    @property
    def out(self) -> nn.Module:
        """The CNN's output layer (the one that trains while the rest is frozen: ``freeze_epochs``)."""
        return self.cnn.get_submodule(_output_layer_name(self.cnn))

    @classmethod
    def from_config(cls, in_shape: tuple[int, ...], n_classes: int, config: dict) -> "ImageNetHead":
        return cls(in_shape, n_classes, cnn=config["cnn"], weights_path=config["weights_path"],
                   colormap=config["image_colormap"], height=config["image_height"], width=config["image_width"],
                   db=config["image_db"])

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.cnn(self.image(spec))
