"""Full-rate filterbanks (SincNet, LEAF, EfficientLEAF) on long inputs: past ``max_batch_elements`` they
run chunk by chunk under activation checkpointing, with the values and gradients of the whole batch."""
import pytest
import torch
import torch.utils.checkpoint

from models import frontend_functional as FF
from models.leaf import Leaf
from models.sincnet import SincNet

SR = 8000


def layers():
    return {"sincnet": SincNet(SR, n_filters=16, kernel_size=65, hop_length=40),
            "leaf": Leaf(SR, 16, hop_length=40),
            "efficientleaf": Leaf(SR, 16, hop_length=40, n_groups=4)}


def step(layer, x):
    """Output and every parameter's gradient of ``output.square().sum()`` (a loss that weights frames unequally)."""
    layer.zero_grad(set_to_none=True)
    out = layer(x)
    out.square().sum().backward()
    return out.detach(), {name: p.grad.clone() for name, p in layer.named_parameters()}


@pytest.mark.parametrize("name", ["sincnet", "leaf", "efficientleaf"])
def test_chunked_batch_gives_the_whole_batch_values_and_gradients(name, monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(5, 3000)
    layer = layers()[name]
    whole, whole_grads = step(layer, x)

    calls = []
    checkpoint = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda fn, chunk, **kw: calls.append(len(chunk))
                        or checkpoint(fn, chunk, **kw))
    filterbank = layer if name == "sincnet" else layer.filterbank
    # two examples' full-rate outputs; EfficientLEAF's groups are decimated (fewer elements): one example each
    filterbank.max_batch_elements = 2 * 16 * 3000 if name != "efficientleaf" else 1
    chunked, chunked_grads = step(layer, x)

    assert calls and sum(calls) % 5 == 0 and max(calls) <= 2  # really chunked: 5 examples in chunks of <= 2
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    assert chunked_grads.keys() == whole_grads.keys()
    for key in whole_grads:
        torch.testing.assert_close(chunked_grads[key], whole_grads[key], rtol=1e-4, atol=1e-6, msg=key)


def test_no_chunks_without_gradients_or_below_the_bound():
    x = torch.randn(4, 100)
    seen = []

    def fn(chunk):
        seen.append(len(chunk))
        return chunk * 2

    with torch.no_grad():
        FF.checkpointed_over_batch(fn, x, elements_per_example=1000, max_elements=10)
    FF.checkpointed_over_batch(fn, x, elements_per_example=10, max_elements=40)
    assert seen == [4, 4]
    torch.testing.assert_close(FF.checkpointed_over_batch(fn, x.requires_grad_(), 1000, 2000), x * 2)
    assert seen[2:] == [2, 2]
