"""CutMix and SapAugment (models/batch_augment.py, training/sapaugment.py): the pasted patch and its label share,
SapAugment's curve against the incomplete beta function computed here by integration, the direction of the
policy (hard examples get less), augmentation in training only, and seeded, exactly resumable trials."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from torch.nn import functional as F

from models.batch_augment import CutMix, Mix, box_masks, draw_boxes, paste, strength_masks
from models.classifiers import build_model
from training.config import resolve_config
from training.loop import evaluate, train_epoch
from training.sapaugment import (SAP_A, SAP_S, SapPolicy, SapWaveformAugment, build_sap_policy, mixed_loss,
                                 sap_curve, sap_strengths)
from training.trial import run_trial
from tests.fixtures import make_fsdd
from tests.test_trial import collect
from tuning.validate import check_configs

AUGMENTED = {"cutmix": True, "cutmix_p": 1.0, "sapaugment": True, "specaugment_freq": 4, "specaugment_time": 4}


def area_of(box) -> int:
    f0, f1, t0, t1 = (int(v) for v in box)
    return max(f1 - f0, 0) * max(t1 - t0, 0)


# CutMix

def test_pasted_pixels_and_label_share_of_given_boxes():
    torch.manual_seed(0)
    spec = torch.randn(4, 10, 16)
    perm = torch.tensor([2, 0, 3, 1])
    boxes = torch.tensor([[0, 3, 0, 4],      # at the corner
                          [7, 10, 13, 16],   # 3 x 3 at the far corner
                          [2, 2, 5, 9],      # empty
                          [0, 10, 0, 16]])   # everything
    mixed, lam = paste(spec, perm, boxes)
    for i in range(4):
        f0, f1, t0, t1 = boxes[i].tolist()
        inside = torch.zeros(10, 16, dtype=torch.bool)
        inside[f0:f1, t0:t1] = True
        assert torch.equal(mixed[i][inside], spec[perm[i]][inside])
        assert torch.equal(mixed[i][~inside], spec[i][~inside])
        assert lam[i].item() == pytest.approx(area_of(boxes[i]) / (10 * 16), rel=1e-6)  # float32
    assert lam.tolist() == pytest.approx([12 / 160, 9 / 160, 0.0, 1.0], rel=1e-6)


def test_cutmix_boxes_are_clipped_squares_and_lam_is_their_inside_share():
    torch.manual_seed(1)
    height, width = 12, 20
    cut = CutMix(p=1.0, min_share=0.75, max_share=0.75)  # side round(0.75 * 12) = 9: most patches cross the border
    spec = torch.randn(64, 2, height, width)  # 4-D: every channel alike
    mixed, mix = cut(spec)
    assert isinstance(mix, Mix) and sorted(mix.perm.tolist()) == list(range(64))
    clipped = 0
    for i in range(64):
        f0, f1, t0, t1 = mix.boxes[i].tolist()
        assert 0 <= f0 <= f1 <= height and 0 <= t0 <= t1 <= width
        for lo, hi, size in ((f0, f1, height), (t0, t1, width)):
            assert hi - lo == 9 or lo == 0 or hi == size  # a side of 9, or cut by the border
        clipped += (f1 - f0) * (t1 - t0) < 81
        assert mix.lam[i].item() == pytest.approx(area_of(mix.boxes[i]) / (height * width), abs=1e-7)
        inside = torch.zeros(height, width, dtype=torch.bool)
        inside[f0:f1, t0:t1] = True
        for c in range(2):
            assert torch.equal(mixed[i, c][inside], spec[mix.perm[i], c][inside])
            assert torch.equal(mixed[i, c][~inside], spec[i, c][~inside])
    assert clipped > 10  # the clipped patches count only their inside


def test_cutmix_probability_and_sides_follow_the_strength():
    torch.manual_seed(2)
    spec = torch.randn(8, 16, 40)
    never, mix = CutMix(p=0.0)(spec)
    assert torch.equal(never, spec) and float(mix.lam.sum()) == 0.0
    boxes = draw_boxes(torch.tensor([0, 4, 8]), 100, 100)
    assert area_of(boxes[0]) == 0 and area_of(boxes[1]) <= 16 and area_of(boxes[2]) <= 64
    strength = torch.tensor([0.0, 0.5, 1.0])
    _, mix = CutMix(p=1.0, min_share=0.1, max_share=0.3)(torch.randn(3, 200, 100), strength)
    assert [area_of(b) <= s * s for b, s in zip(mix.boxes, (10, 20, 30))] == [True] * 3  # side share of 100


@pytest.mark.parametrize("kind", ["ce", "bce"])
def test_the_loss_mixes_labels_by_the_pasted_share(kind):
    torch.manual_seed(3)
    logits, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1])
    mix = Mix(perm=torch.tensor([1, 0, 4, 2, 3]), lam=torch.tensor([0.0, 0.25, 0.5, 1.0, 0.1]),
              boxes=torch.zeros(5, 4, dtype=torch.long))
    onehot = F.one_hot(y, 4).float()
    soft = (1 - mix.lam[:, None]) * onehot + mix.lam[:, None] * onehot[mix.perm]  # the mixed label
    if kind == "ce":
        expected = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    else:
        p = torch.sigmoid(logits)
        expected = -(soft * torch.log(p) + (1 - soft) * torch.log(1 - p)).mean(dim=1).mean()
    torch.testing.assert_close(mixed_loss(logits, y, mix, kind), expected)
    torch.testing.assert_close(mixed_loss(logits, y, None, kind),
                               mixed_loss(logits, y, Mix(mix.perm, torch.zeros(5), mix.boxes), kind))


def test_strength_masks_widths():
    torch.manual_seed(4)
    spec = torch.ones(3, 20, 50)
    out = strength_masks(spec, torch.tensor([0.0, 0.5, 1.0]), freq_mask=10, time_mask=20)
    assert (out[0] == 1).all()
    rows_masked = [(out[i] == 0).all(dim=1).sum().item() for i in range(3)]
    cols_masked = [(out[i] == 0).all(dim=0).sum().item() for i in range(3)]
    assert rows_masked == [0, 5, 10] and cols_masked == [0, 10, 20]
    assert box_masks(torch.tensor([[1, 3, 2, 5]]), 4, 6).sum() == 6


# SapAugment's curve and policy

def beta_cdf(r: float, alpha: float, beta: float) -> float:
    """I_r(alpha, beta) by integrating Beta's density (not scipy.special.betainc)."""
    norm = math.gamma(alpha) * math.gamma(beta) / math.gamma(alpha + beta)
    return quad(lambda t: t ** (alpha - 1) * (1 - t) ** (beta - 1), 0, r)[0] / norm


@pytest.mark.parametrize("a, s", [(SAP_A, SAP_S), (0.3, 4.0), (0.8, 2.0)])
def test_curve_is_one_minus_the_incomplete_beta_of_the_rank(a, s):
    assert (SAP_A, SAP_S) == (0.5, 10.0)  # DeepSpectrumLite's sap_aug_a, sap_aug_s
    for r in (0.01, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0):
        assert sap_curve(r, a, s) == pytest.approx(1 - beta_cdf(r, s * (1 - a), s * a), abs=1e-9)


def test_curve_at_the_seeds_parameters():
    ranks = np.arange(1, 33) / 32
    curve = sap_curve(ranks)
    assert curve[-1] == 0.0                         # the highest loss: no augmentation
    assert curve[0] > 0.9999                        # the lowest: (nearly) full strength
    assert sap_curve(0.5) == pytest.approx(0.5)     # a = 0.5: symmetric, half at the middle rank
    assert np.all(np.diff(curve) < 0)               # falls with the loss rank
    with pytest.raises(ValueError, match="0 < a < 1"):
        sap_curve(0.5, 1.0, 10.0)


def test_strengths_follow_the_loss_ranks_hard_examples_get_less():
    losses = torch.tensor([0.3, 2.0, 0.1, 0.9, 5.0, 0.5])
    strengths = sap_strengths(losses)
    rank = losses.argsort().argsort() + 1  # 1: lowest loss
    expected = torch.tensor([sap_curve(int(k) / 6) for k in rank], dtype=torch.float32)
    torch.testing.assert_close(strengths, expected)
    assert strengths[4] == 0.0 and strengths[2] == strengths.max()  # highest loss: 0; lowest: the most
    by_loss = strengths[losses.argsort()]
    assert torch.all(by_loss[1:] < by_loss[:-1])  # monotonic: more loss, less augmentation


def test_policy_ranks_the_clean_batchs_losses_in_eval_mode():
    cfg = resolve_config({"n_points": 64, **AUGMENTED})
    torch.manual_seed(5)
    model = build_model(cfg, 64, 3).train()
    x, y = torch.randn(8, 64), torch.randint(0, 3, (8,))
    state = torch.get_rng_state()
    policy = build_sap_policy(cfg)
    strengths = policy.strengths(model, x, y)
    assert model.training and torch.equal(torch.get_rng_state(), state)  # mode back, no random draw
    model.eval()
    with torch.no_grad():
        losses = F.cross_entropy(model(x)[0], y, reduction="none")
    torch.testing.assert_close(strengths, sap_strengths(losses))
    assert build_sap_policy(resolve_config({})) is None
    assert isinstance(policy, SapPolicy) and (policy.a, policy.s) == (0.5, 10.0)


def test_waveform_strength_zero_leaves_the_wave_and_one_changes_it():
    aug = SapWaveformAugment(8000, p=1.0)
    x = torch.sin(torch.arange(4000) / 7.0).repeat(3, 1)
    torch.manual_seed(6)
    out = aug(x, torch.tensor([0.0, 1.0, 1.0]))
    # strength 0: 0 dB gain, no delay, noise 40 dB below the signal
    assert (out[0] - x[0]).pow(2).mean().sqrt() == pytest.approx(x[0].pow(2).mean().sqrt() / 100, rel=1e-3)
    assert torch.all(out[1:, :400] == 0)  # a 10 % delay, zero-filled
    torch.manual_seed(6)
    assert torch.equal(aug(x, torch.tensor([0.0, 1.0, 1.0])), out)


# training only, and exact trials

def test_evaluate_is_the_same_with_the_augmentations_on_and_off():
    plain, augmented = resolve_config({"n_points": 64}), resolve_config({"n_points": 64, **AUGMENTED})
    torch.manual_seed(7)
    a = build_model(plain, 64, 3)
    b = build_model(augmented, 64, 3)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(40, 64), torch.randint(0, 3, (40,))
    ea, eb = (evaluate(m, x, y, 16, torch.device("cpu")) for m in (a, b))
    assert ea.loss == eb.loss and ea.accuracy == eb.accuracy and np.array_equal(ea.predictions, eb.predictions)
    b.eval()
    logits, mix = b.train_forward(x[:8], torch.ones(8))
    assert mix is None and torch.equal(logits, a.eval()(x[:8])[0])  # eval mode: no CutMix, no masks


def test_a_train_epoch_with_cutmix_and_sapaugment_steps_and_differs_from_plain():
    torch.manual_seed(8)
    x, y = torch.randn(48, 64), torch.randint(0, 3, (48,))
    losses = {}
    for name, extra in (("plain", {}), ("augmented", AUGMENTED)):
        cfg = resolve_config({"n_points": 64, **extra})
        torch.manual_seed(9)
        model = build_model(cfg, 64, 3)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        losses[name] = train_epoch(model, opt, x, y, 16, torch.Generator().manual_seed(0), torch.device("cpu"),
                                   sap=build_sap_policy(cfg))
    assert math.isfinite(losses["augmented"]) and losses["augmented"] != losses["plain"]


SMALL = {"n_samples": 150, "n_points": 64, "batch_size": 64, "init_lambd": 1.276, "checkpoint_every": 1,
         "model_name": "conv_net", **AUGMENTED, "cutmix_p": 0.5}


KEYS = ("loss", "valid_loss", "valid_acc", "lambd_est", "test_loss", "test_accuracy")


def test_seeded_trials_repeat_and_resume_exactly(tmp_path):
    cfg = {**SMALL, "max_epochs": 2}
    straight, report = collect(tmp_path / "a")
    final = run_trial(cfg, report)
    again = run_trial(cfg, lambda m, c: None)
    for key in KEYS:
        assert again[key] == final[key], key
    resumed, report2 = collect(tmp_path / "b")
    final_resumed = run_trial(cfg, report2, restore_dir=str(straight[0][1]))
    assert [m["epoch"] for m, _ in resumed] == [1]
    for (m_straight, _), (m_resumed, _) in zip(straight[1:], resumed):
        assert m_resumed["loss"] == m_straight["loss"] and m_resumed["valid_loss"] == m_straight["valid_loss"]
    for key in KEYS:
        assert final_resumed[key] == final[key], key


def test_fsdd_trial_with_waveform_augmentation_repeats_and_resumes(tmp_path):
    data = make_fsdd(tmp_path / "fsdd", takes=2)
    cfg = {"dataset_name": "audio_mnist", "data_dir": str(data), "n_points": 5500, "model_name": "mel_linear_net",
           "n_mels": 16, "hop_length": 80, "init_lambd": 13.333, "batch_size": 16, "max_epochs": 2,
           "checkpoint_every": 1, "augment_waveform": True, **AUGMENTED, "cutmix_p": 0.5}
    straight, report = collect(tmp_path / "a")
    final = run_trial(cfg, report)
    again = run_trial(cfg, lambda m, c: None)
    resumed, report2 = collect(tmp_path / "b")
    final_resumed = run_trial(cfg, report2, restore_dir=str(straight[0][1]))
    for key in KEYS:
        assert again[key] == final[key] and final_resumed[key] == final[key], key


def test_config_checks():
    good = resolve_config(AUGMENTED)
    assert check_configs([good]) == []
    assert check_configs([resolve_config({"sapaugment_a": 1.0})]) == ["sapaugment_a=1.0: must be a number in (0, 1)"]
    assert check_configs([resolve_config({"sapaugment_s": 0})]) == ["sapaugment_s=0: must be a number > 0"]
    assert check_configs([resolve_config({"cutmix_p": 1.5})]) == ["cutmix_p=1.5: must be a number in [0, 1]"]
    assert check_configs([resolve_config({"cutmix": True, "cutmix_min": 0.5, "cutmix_max": 0.2})]) == [
        "cutmix_min=0.5: above cutmix_max=0.2; give the smaller patch share first"]
