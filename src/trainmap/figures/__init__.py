"""Paper tables and figures from the results, each paper's under its own name.

``hu2023``: Hu et al. (2023), training maps, tables 1, 2, 4, figures 10, 11;
``blog2025`` and ``blog2025_summary``: the ICLR 2025 blog post's figures and its
Markdown summary; ``sandbox2025``, ``sandbox2025_frames`` and ``sandbox2025_video``:
the visual case study's figures from the logs, the frames and the figures built from
them, the training video. Only the frames and the video run the sandbox model (torch,
through :mod:`trainmap.sandbox.probe`); every other figure reads tables.
"""
