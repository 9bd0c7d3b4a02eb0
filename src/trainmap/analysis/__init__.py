"""The analysis of Hu et al. (2023): metric tables in, HMM training maps and regressions out.

``normalize`` (z-scores, run split) → ``hmm`` (BIC sweep, fit, decoding) →
``training_map`` (edges and feature importance) → ``regression`` (convergence
time, detour states, dissimilarity); ``baselines`` (K-means, HMM-1);
``experiments`` (the user's own tables); ``synthetic`` (tables with known answers).
This package never imports torch.
"""
