"""Paper tables and figures from the analysis outputs, one module per paper.

``hu2023``: Hu et al. (2023), training maps, tables 1, 2, 4, figures 10, 11;
``blog2025``: the ICLR 2025 blog post. Figures never import torch.
"""
