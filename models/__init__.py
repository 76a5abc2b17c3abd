"""Front-ends and classifiers. Each front-end module registers its :class:`models.registry.Frontend`
record beside its builder; importing this package imports them all, so the registry is complete (in
this order, which ``--list`` and the benches follow). A new front-end is a module plus its name in
the line below (docs/extending.md)."""
from models import frontends, sincnet, trainable_mel, varying_stft, leaf  # noqa: F401, I001 - each registers its own
