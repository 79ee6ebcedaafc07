"""ttnet_nn: tensor-train layers for PyTorch."""
