import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    # On a 2-core machine shared with other jobs, two torch threads wait on each other
    # (up to 30x slower for these tiny models). One thread changes no result.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
