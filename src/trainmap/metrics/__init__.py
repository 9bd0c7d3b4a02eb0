"""Weight metrics of Hu et al. (2023), appendix B, batched over seeds (see :mod:`.weights`)."""

from trainmap.metrics.weights import as_matrix, weight_metrics

__all__ = ["as_matrix", "weight_metrics"]
