"""Shared by the training tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    # Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP threads waiting on each
    # other made every step about 100x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
