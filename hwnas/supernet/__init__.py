"""Weight sharing: an elastic supernet per encoder family
(:mod:`hwnas.supernet.elastic`), trained with the sandwich rule and in-place
distillation (:mod:`hwnas.supernet.sandwich`), from which any architecture
of the family inherits weights in seconds."""
