"""The loss audit's PyTorch side, and the generator of docs/audit.md.

1. Confirms that every jnp re-expression of a PyTorch loss in tests/_audit_cases.py
   (the tests may not import torch) equals the torch function, in float64, on random
   targets and predictions of its support: per observation, ``reduction="none"``.
2. With ``--markdown``, runs :func:`nllax.audit` on every case and writes the audit table
   into docs/audit.md (between the markers); tests/test_audit.py checks it is in step.

Run from the repository root (torch is in the ``bench`` extra)::

    python bench/audit_torch.py             # the torch checks
    python bench/audit_torch.py --markdown  # and regenerate docs/audit.md

Exit status 0 when every re-expression matches (relative error <= 64 float64 eps: the
two sides are the same formula, evaluated by different code, a few roundings apart).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

DOC = ROOT / "docs" / "audit.md"
BEGIN, END = "<!-- audit table: begin -->\n", "<!-- audit table: end -->\n"


def _torch_losses():
    """case name -> f(y, pred) with torch tensors, per observation (reduction='none')."""
    import torch
    import torch.nn.functional as F

    K = 4

    def onehot(k):
        return F.one_hot(k, K).to(torch.float64)

    def pm1(y):
        return 2.0 * y - 1.0

    return {
        "torch.nn.L1Loss": lambda y, p: torch.nn.L1Loss(reduction="none")(p, y),
        "torch.nn.MSELoss": lambda y, p: torch.nn.MSELoss(reduction="none")(p, y),
        "torch.nn.HuberLoss (delta=1)": lambda y, p: torch.nn.HuberLoss(
            reduction="none", delta=1.0)(p, y),
        "torch.nn.SmoothL1Loss (beta=0.5)": lambda y, p: torch.nn.SmoothL1Loss(
            reduction="none", beta=0.5)(p, y),
        "torch.nn.BCEWithLogitsLoss": lambda y, z: torch.nn.BCEWithLogitsLoss(
            reduction="none")(z, y),
        "torch.nn.BCEWithLogitsLoss (pos_weight=3)": lambda y, z: torch.nn.BCEWithLogitsLoss(
            reduction="none", pos_weight=torch.tensor(3.0, dtype=torch.float64))(z, y),
        "torch.nn.BCELoss": lambda y, p: torch.nn.BCELoss(reduction="none")(p, y),
        "torch.nn.CrossEntropyLoss": lambda k, z: torch.nn.CrossEntropyLoss(
            reduction="none")(z, k),
        "torch.nn.CrossEntropyLoss (label_smoothing=0.1)": lambda k, z: torch.nn.CrossEntropyLoss(
            reduction="none", label_smoothing=0.1)(z, k),
        "torch.nn.NLLLoss (log-softmax inputs)": lambda k, z: torch.nn.NLLLoss(
            reduction="none")(F.log_softmax(z, -1), k),
        "torch.nn.KLDivLoss (log-softmax inputs, one-hot targets, sum)": lambda k, z:
            torch.nn.KLDivLoss(reduction="none")(F.log_softmax(z, -1), onehot(k)).sum(-1),
        "torch.nn.MultiMarginLoss": lambda k, z: torch.nn.MultiMarginLoss(
            reduction="none")(z, k),
        "torch.nn.SoftMarginLoss": lambda y, z: torch.nn.SoftMarginLoss(
            reduction="none")(z, pm1(y)),
        "torch.nn.MultiLabelSoftMarginLoss (one label)": lambda y, z:
            torch.nn.MultiLabelSoftMarginLoss(reduction="none")(z[:, None], y[:, None]),
        "torch.nn.HingeEmbeddingLoss (margin=1)": lambda y, x: torch.nn.HingeEmbeddingLoss(
            reduction="none", margin=1.0)(x, pm1(y)),
        "torch.nn.PoissonNLLLoss": lambda k, eta: torch.nn.PoissonNLLLoss(
            reduction="none")(eta, k),
        "torch.nn.PoissonNLLLoss, base measure 1/k!": lambda k, eta: torch.nn.PoissonNLLLoss(
            reduction="none")(eta, k),
        "torch.nn.PoissonNLLLoss (full=True)": lambda k, eta: torch.nn.PoissonNLLLoss(
            reduction="none", full=True)(eta, k),
        "torch.nn.PoissonNLLLoss (log_input=False), base 1/k!": lambda k, lam:
            torch.nn.PoissonNLLLoss(reduction="none", log_input=False)(lam, k),
        "torch.nn.GaussianNLLLoss (full=False)": lambda y, mv: torch.nn.GaussianNLLLoss(
            reduction="none")(mv[0], y, mv[1]),
    }


def _inputs(case, rng, n=257):
    """Random targets of the case's support and predictions of its kind, float64."""
    support = case.support
    if isinstance(support, tuple):
        y = rng.integers(0, support[1], n)
        pred = 3.0 * rng.normal(size=(n, support[1]))
    elif support == "binary":
        y = rng.integers(0, 2, n).astype(np.float64)
        pred = 4.0 * rng.normal(size=n)
    elif support == "counts":
        y = rng.poisson(3.0, n).astype(np.float64)
        pred = rng.uniform(0.05, 3.0, n)
    else:
        y = 3.0 * rng.normal(size=n)
        pred = 3.0 * rng.normal(size=n)
    if case.predictions is not None:  # the case's own kind of prediction (probs, (mean, var), ...)
        src = case.predictions
        if isinstance(src, tuple):
            pred = tuple(rng.choice(np.asarray(s), n) * rng.uniform(0.5, 1.5, n) for s in src)
        else:
            pred = np.clip(rng.choice(np.asarray(src), n) * rng.uniform(0.5, 1.5, n), 1e-6,
                           1 - 1e-6 if np.max(src) < 1 else np.inf)
    return y, pred


def check_torch() -> bool:
    import jax
    import torch

    from _audit_cases import CASES

    losses = _torch_losses()
    torch_cases = [c for c in CASES if c.source == "torch"]
    missing = {c.name for c in torch_cases} - set(losses)
    assert not missing, f"no torch function for {missing}"
    rng = np.random.default_rng(0)
    ok = True
    eps = np.finfo(np.float64).eps
    print(f"torch {torch.__version__}: jnp re-expressions against torch, float64, 257 draws")
    with jax.enable_x64(True):
        for case in torch_cases:
            y, pred = _inputs(case, rng)
            mine = np.asarray(jax.vmap(case.loss)(y, pred))
            ty = torch.as_tensor(y) if not isinstance(case.support, tuple) else torch.as_tensor(
                y, dtype=torch.long)
            tp = tuple(torch.as_tensor(p) for p in pred) if isinstance(pred, tuple) else \
                torch.as_tensor(pred)
            theirs = losses[case.name](ty, tp).detach().numpy().reshape(mine.shape)
            scale = np.maximum(np.abs(theirs), 1.0)
            worst = float(np.max(np.abs(mine - theirs) / scale) / eps)
            good = worst <= 64
            ok &= good
            print(f"  {'ok  ' if good else 'FAIL'} {worst:7.1f} eps  {case.name}")
    return ok


def write_markdown() -> None:
    import nllax
    from _audit_cases import CASES, render_markdown

    results = {c.name: nllax.audit(c.loss, support=c.support, predictions=c.predictions,
                                   base=c.base) for c in CASES}
    table = render_markdown(results)
    text = DOC.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    DOC.write_text(head + BEGIN + table + END + tail)
    print(f"wrote {DOC.relative_to(ROOT)} ({len(CASES)} losses)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="regenerate docs/audit.md")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch checks")
    args = parser.parse_args(argv)
    ok = True if args.no_torch else check_torch()
    if args.markdown:
        write_markdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
