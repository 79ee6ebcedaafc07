"""Shared test settings: deterministic hypothesis runs and a fixed torch thread count."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ttnet",
    derandomize=True,
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ttnet"))


def pytest_configure(config):
    """Apply TTNET_NUM_THREADS to torch when torch is installed (it is optional for the core)."""
    threads = int(os.environ.get("TTNET_NUM_THREADS", "1"))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
