"""Evaluation metrics and losses shared by node and graph tasks.

Predictions are raw model outputs (logits or scores):

* ``"acc"``: accuracy :math:`\frac{1}{n}\\sum_i [\arg\\max_c \\hat y_{ic} = y_i]`;
  a 1-D :obj:`pred` is taken as predicted class labels.
* ``"rocauc"`` for one binary target: area under the ROC curve of the score
  :math:`s_i` - the single output column, or :math:`z_{i1} - z_{i0}` for two
  logits (monotone in the softmax probability of class 1).
* OGB datasets are evaluated by OGB's own ``Evaluator`` (see :func:`ogb_eval`).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

HIGHER_IS_BETTER = {"acc": True, "rocauc": True, "ap": True, "f1": True, "rmse": False, "mae": False}


def accuracy(pred: Tensor, y: Tensor) -> float:
    r"""Accuracy of logits :obj:`pred` (:obj:`[n, C]`) or labels (:obj:`[n]`)."""
    pred = pred.detach()
    labels = pred.argmax(dim=-1) if pred.dim() == 2 else pred.view(-1)
    y = y.view(-1)
    if y.numel() == 0:
        return float("nan")
    return float((labels.to(y.device) == y).float().mean())


def binary_score(pred: Tensor) -> Tensor:
    r"""The score of class 1 from one logit column or two class logits."""
    pred = pred.detach().float()
    if pred.dim() == 2 and pred.size(1) == 2:
        return pred[:, 1] - pred[:, 0]
    return pred.reshape(-1)


def binary_rocauc(pred: Tensor, y: Tensor) -> float:
    r"""ROC-AUC of one binary target (scikit-learn's ``roc_auc_score``)."""
    from sklearn.metrics import roc_auc_score

    y = y.detach().view(-1).cpu().numpy()
    if len(set(y.tolist())) < 2:
        raise ValueError("ROC-AUC needs both positive and negative labels among the evaluated nodes")
    return float(roc_auc_score(y, binary_score(pred).cpu().numpy()))


def ogb_eval(evaluator: object, metric: str, y_true: Tensor, y_pred: Tensor) -> float:
    r"""Runs an OGB ``Evaluator`` on 2-D :obj:`y_true` / :obj:`y_pred` and returns
    the value of :obj:`metric`."""
    out = evaluator.eval({"y_true": y_true.detach().cpu(), "y_pred": y_pred.detach().cpu()})
    return float(out[metric])


def masked_bce(out: Tensor, target: Tensor) -> Tensor:
    r"""Binary cross-entropy with logits over the labelled entries of
    :obj:`target` (NaN or negative entries are unlabelled and ignored)."""
    target = target.view(out.shape).to(out.device)
    target = target.float()
    mask = ~torch.isnan(target) & (target >= 0)
    return F.binary_cross_entropy_with_logits(out[mask], target[mask])


def masked_mse(out: Tensor, target: Tensor) -> Tensor:
    r"""Mean squared error over the non-NaN entries of :obj:`target`."""
    target = target.view(out.shape).to(out.device).float()
    mask = ~torch.isnan(target)
    return F.mse_loss(out[mask], target[mask])


def cross_entropy(out: Tensor, target: Tensor) -> Tensor:
    r"""Cross-entropy of logits :obj:`out` (:obj:`[n, C]`) and labels."""
    return F.cross_entropy(out, target.view(-1).to(out.device).long())


LOSSES: dict = {"cross_entropy": cross_entropy, "bce": masked_bce, "mse": masked_mse}


def loss_function(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    r"""The loss callable for a loss name (``"cross_entropy"``, ``"bce"``, ``"mse"``)."""
    return LOSSES[name]
