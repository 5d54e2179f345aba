"""Training code: plain PyTorch/transformers, never imports Django."""
