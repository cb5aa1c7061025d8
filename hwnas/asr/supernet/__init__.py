"""Weight sharing: an elastic supernet per encoder family
(:mod:`hwnas.asr.supernet.elastic`), trained with the sandwich rule and in-place
distillation (:mod:`hwnas.asr.supernet.sandwich`), from which any architecture
of the family inherits weights in seconds.

The search reaches it through its task (``Task.weight_sharing``) and uses
what this package names below: the workspace's supernets, the screen, and
the DARTS relaxation."""

from hwnas.asr.supernet.relax import differentiable_search
from hwnas.asr.supernet.screen import SupernetScreen
from hwnas.asr.supernet.workspace import held_supernet, supernet_of, train_family

__all__ = ["SupernetScreen", "differentiable_search", "held_supernet", "supernet_of",
           "train_family"]
