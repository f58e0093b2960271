"""PyTorch helpers of the model-zoo training scripts (`models/<name>/train.py`):
determinism, augmentation, the seeded training loop, evaluation and the ONNX export.

Only the training scripts import this (PyTorch, numpy, onnx); CI and the Rust crates
never do. The numpy-only part (data files, split draws, per-class recall, writing the
data files and log) is `zoo_data.py`, which `make_selection_sets.py` imports without
torch. Conventions: seeded and deterministic (one CPU thread, deterministic
algorithms), legacy TorchScript exporter, static batch 1, opset 17, softmax inside the
graph, every export verified with `onnx.checker` and `onnx.reference.ReferenceEvaluator`
against PyTorch.
"""

import time
from collections import Counter

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import zoo_data

OPSET = 17


# ------------------------------------------------------------------------- training


def set_determinism(seed: int):
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # fixed reduction order -> bit-identical reruns


def augment_1d(x: torch.Tensor, gen: torch.Generator, max_shift: int, scale: float, offset: float, noise: float):
    """Signal augmentation for [B, 1, L] batches: time shift (edge padded), amplitude
    scale, baseline offset and white noise."""
    b, _, length = x.shape
    if max_shift > 0:
        shift = torch.randint(-max_shift, max_shift + 1, (b,), generator=gen)
        idx = (torch.arange(length).unsqueeze(0) - shift.unsqueeze(1)).clamp(0, length - 1)
        x = torch.gather(x.squeeze(1), 1, idx).unsqueeze(1)
    s = 1.0 + scale * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    o = offset * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    return x * s + o + noise * torch.randn(x.shape, generator=gen)


def inverse_sqrt_class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """`zoo_data.inverse_sqrt_class_weight_values` as the float32 tensor that
    `train(class_w=...)` takes."""
    return torch.tensor(zoo_data.inverse_sqrt_class_weight_values(y, num_classes), dtype=torch.float32)


@torch.no_grad()
def evaluate(net: nn.Module, x: np.ndarray, y: np.ndarray, batch=256):
    """(accuracy, mean cross-entropy, predictions) of `net` (in eval mode), run `batch`
    samples at a time (`batch=None`: all of x in one call, as models/ecg5000 always
    did, so its reruns keep their bit-exact logits and best epoch)."""
    net.eval()
    if batch is None:
        logits = net(torch.from_numpy(x))
    else:
        logits = torch.cat([net(torch.from_numpy(x[i : i + batch])) for i in range(0, len(x), batch)])
    loss = F.cross_entropy(logits, torch.from_numpy(y)).item()
    pred = logits.argmax(1).numpy()
    return float((pred == y).mean()), loss, pred


def train(
    net: nn.Module,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    *,
    epochs: int,
    seed: int,
    batch: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    class_w=None,
    label_smoothing: float = 0.05,
    augment=None,
    val=None,
    grad_clip=None,
    log_every: int = 10,
    eval_batch=256,
):
    """AdamW + one-cycle LR. With `val=(x, y)` keeps the weights of the epoch with the
    best (val accuracy, -val loss), evaluated `eval_batch` samples at a time (see
    `evaluate`); without it keeps the last epoch. Returns (best_epoch, seconds)."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(y_tr) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x_tr)
    yt = torch.from_numpy(y_tr)
    best, best_state, best_epoch = (-1.0, float("inf")), None, epochs - 1
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(perm), batch):
            b = perm[i : i + batch]
            if len(b) < 2:  # BatchNorm needs > 1 sample
                continue
            xb = xt[b] if augment is None else augment(xt[b], gen)
            loss = F.cross_entropy(net(xb), yt[b], weight=class_w, label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            opt.step()
            sched.step()
        if val is not None:
            acc, vloss, _ = evaluate(net, *val, batch=eval_batch)
            if (acc, -vloss) > (best[0], -best[1]):
                best = (acc, vloss)
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
                best_epoch = epoch
            msg = f"val acc {acc:.4f} val loss {vloss:.4f}"
        else:
            msg = ""
        if epoch % log_every == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:3d} loss {loss.item():.4f} {msg}", flush=True)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return best_epoch, time.time() - t0


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------- export


class WithSoftmax(nn.Module):
    """Export wrapper: the shipped graph outputs probabilities."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


def export_and_verify(net: nn.Module, test_x: np.ndarray, onnx_path: str, input_name: str, atol: float = 1e-4):
    """Export `WithSoftmax(net)` (legacy exporter, opset 17, batch 1), check the graph,
    and run onnx's ReferenceEvaluator on every test sample against PyTorch.
    Returns (op types in graph order, op counts, max |onnx - torch|, onnx predictions)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    wrapped = WithSoftmax(net).eval()
    torch.onnx.export(
        wrapped,
        (torch.from_numpy(test_x[:1]),),
        onnx_path,
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=[input_name],
        output_names=["probs"],
    )
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    op_order = list(dict.fromkeys(n.op_type for n in model.graph.node))
    op_counts = dict(Counter(n.op_type for n in model.graph.node))
    sess = ReferenceEvaluator(model)
    onnx_pred = np.empty(len(test_x), np.int64)
    max_diff = 0.0
    with torch.no_grad():
        for i in range(len(test_x)):
            xi = test_x[i : i + 1]
            (p,) = sess.run(None, {input_name: xi})
            ref = wrapped(torch.from_numpy(xi)).numpy()
            assert p.shape == ref.shape, (p.shape, ref.shape)
            max_diff = max(max_diff, float(np.abs(p - ref).max()))
            onnx_pred[i] = int(p.argmax())
    assert max_diff < atol, f"onnx vs torch max abs diff {max_diff} >= {atol}"
    return op_order, op_counts, max_diff, onnx_pred
