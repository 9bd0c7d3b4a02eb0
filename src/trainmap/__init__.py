"""trainmap: latent state models of neural-network training dynamics.

Train many seeds, measure the weights at every checkpoint, fit a Gaussian HMM
over the metric sequences and read it as a training map (Hu et al., TMLR 2023).
"""

__version__ = "0.1.0"
