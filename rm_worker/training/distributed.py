"""Multi-process reward-model training (``devices`` > 1): one process per device, gradients summed over
``torch.distributed`` (gloo on CPU, NCCL on CUDA).

The calling process is rank 0: it keeps its callbacks (the worker's database writes), evaluates, checkpoints
and exports. It starts ranks 1..N-1 as fresh interpreters (``python -m rm_worker.training.distributed``)
rather than through ``multiprocessing``, which refuses to start children from a daemonic process such as a
Celery pool worker. Every rank builds the same model, reads the same shuffled batches and takes a strided
share of each micro-batch (`Ranks.share`); the shares' losses are divided by the whole micro-batch's label
counts and their gradients summed, so a step is the one-process step on the same global batch, up to the
order floating-point sums are taken in.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# A helper rank waits at the next collective while rank 0 evaluates, checkpoints or exports alone: long
# enough for a large held-out split, short enough that a lost peer fails the run within the hour.
COLLECTIVE_TIMEOUT = timedelta(hours=1)
# How long rank 0 waits for the helper ranks to start (import torch, connect) before it gives up.
STARTUP_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ``world_size`` processes of a run (the process group is initialized)."""

    rank: int
    world_size: int

    @property
    def main(self) -> bool:
        """Rank 0: the one that reports, evaluates, checkpoints and exports."""
        return self.rank == 0

    def share(self, indices: Sequence[int]) -> list[int]:
        """This rank's pairs of a micro-batch: every ``world_size``-th, so lengths (sorted in a bucket) even out."""
        return list(indices[self.rank :: self.world_size])

    def ordered(self, indices: Sequence[int]) -> list[int]:
        """The micro-batch in the order `gather_rewards` returns its rewards: rank 0's share, then rank 1's, ..."""
        return [index for rank in range(self.world_size) for index in indices[rank :: self.world_size]]

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (a stop request is asked on rank 0 alone)."""
        value = torch.tensor([int(flag)], device=_collective_device())
        dist.broadcast(value, src=0)
        return bool(value.item())

    def gather_rewards(self, rewards: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """On rank 0: every rank's (A, B) rewards of its share, concatenated in rank order (see `ordered`);
        elsewhere the rank's own. They feed the training metrics, which rank 0 reports for the whole batch."""
        detached = tuple(side.detach().float().cpu() for side in rewards)
        gathered = [None] * self.world_size if self.main else None
        dist.gather_object(detached, gathered, dst=0)
        if not self.main:
            return detached
        return tuple(torch.cat([pair[side] for pair in gathered]) for side in (0, 1))

    def sum_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Sum every parameter's gradient over the ranks. A parameter no loss reached on some rank (its share had
        no label of that objective) counts 0 there; one no rank reached keeps no gradient, as in one process."""
        parameters = list(parameters)
        reached = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float32,
                               device=_collective_device())
        dist.all_reduce(reached)
        summed = [p for p, count in zip(parameters, reached.tolist()) if count > 0]
        for parameter in summed:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        if summed:
            flat = torch.cat([p.grad.reshape(-1) for p in summed])
            dist.all_reduce(flat)
            offset = 0
            for parameter in summed:
                parameter.grad.copy_(flat[offset : offset + parameter.numel()].view_as(parameter.grad))
                offset += parameter.numel()

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's weights and buffers on every rank, so all start from one model whatever their RNG did."""
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def _collective_device() -> torch.device:
    # NCCL moves CUDA tensors only; gloo CPU ones.
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """The device of ``ranks.rank``: CUDA device ``rank`` (one process per GPU), else ``device`` (CPU)."""
    return torch.device("cuda", ranks.rank) if device.type == "cuda" else device


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def run_ranks(world_size: int, device: torch.device, train: Callable[[Ranks], Any], helper_call: tuple) -> Any:
    """Run ``train(ranks)`` here as rank 0 of ``world_size`` processes and return its result.

    ``helper_call`` is ``(function, args)``, picklable by reference: each helper rank runs
    ``function(*args, ranks=Ranks(rank, world_size))``. A helper that fails fails the run.
    """
    if device.type == "cuda" and torch.cuda.device_count() < world_size:
        raise ValueError(f"devices={world_size} but {torch.cuda.device_count()} CUDA device(s) are visible")
    call = pickle.dumps(helper_call)  # before anything starts: a function that cannot be pickled fails here
    # Processes on one CPU share its cores: each takes its part, so their threads do not crowd each other out.
    threads = max(1, torch.get_num_threads() // world_size) if device.type == "cpu" else torch.get_num_threads()
    caller_threads = torch.get_num_threads()
    port = _free_port()
    store = dist.TCPStore("127.0.0.1", port, world_size, is_master=True, timeout=COLLECTIVE_TIMEOUT,
                          wait_for_workers=False)
    with tempfile.TemporaryDirectory(prefix="morm-ranks-") as folder:
        spec = Path(folder) / "call.pkl"
        spec.write_bytes(pickle.dumps({"call": call, "sys_path": sys.path, "port": port,
                                       "world_size": world_size, "backend": _backend(device),
                                       "threads": threads}))
        # The helpers import this package from wherever the caller did, whatever their working folder.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        helpers = [
            subprocess.Popen([sys.executable, "-m", "rm_worker.training.distributed", str(spec), str(rank)], env=env)
            for rank in range(1, world_size)
        ]
        try:
            _wait_for_helpers(store, helpers)
            if device.type == "cuda":
                torch.cuda.set_device(0)  # before NCCL starts: each rank's communicator on its own GPU
            dist.init_process_group(_backend(device), store=store, rank=0, world_size=world_size,
                                    timeout=COLLECTIVE_TIMEOUT)
            torch.set_num_threads(threads)
            result = train(Ranks(0, world_size))
        except BaseException as error:
            for helper in helpers:
                helper.kill()
            # A helper that raised is why rank 0's collective broke: its error, not "connection closed", is news.
            failures = _helper_failures(store, world_size)
            if failures:
                raise RuntimeError("; ".join(failures)) from error
            raise
        finally:
            torch.set_num_threads(caller_threads)
            if dist.is_initialized():
                dist.destroy_process_group()
            codes = [helper.wait() for helper in helpers]
    if any(codes):
        raise RuntimeError(f"a training process failed (exit codes of ranks 1..{world_size - 1}: {codes})")
    return result


def _helper_failures(store: dist.TCPStore, world_size: int) -> list[str]:
    """``"rank N: <error>"`` of each helper that raised (`_helper_main` leaves it on the store)."""
    keys = [f"failed/{rank}" for rank in range(1, world_size)]
    return [f"rank {key.split('/')[1]}: {store.get(key).decode()}" for key in keys if store.check([key])]


def _wait_for_helpers(store: dist.TCPStore, helpers: list[subprocess.Popen]) -> None:
    """Return once every helper checked in on ``store``; raise if one exits first or none come in time."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while store.add("started", 0) < len(helpers):
        exited = [helper.returncode for helper in helpers if helper.poll() is not None]
        if exited:
            raise RuntimeError(f"a training process exited before the run started (exit codes {exited})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the training processes did not start within {STARTUP_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.05)


def _helper_main(spec_file: str, rank: int) -> None:
    """A helper rank: join rank 0's process group and run the call it was given."""
    spec = pickle.loads(Path(spec_file).read_bytes())
    sys.path[:] = spec["sys_path"]  # before unpickling the call, whose function may live on the caller's path
    function, args = pickle.loads(spec["call"])
    store = dist.TCPStore("127.0.0.1", spec["port"], spec["world_size"], is_master=False, timeout=COLLECTIVE_TIMEOUT)
    store.add("started", 1)
    torch.set_num_threads(spec["threads"])
    if spec["backend"] == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(spec["backend"], store=store, rank=rank, world_size=spec["world_size"],
                            timeout=COLLECTIVE_TIMEOUT)
    try:
        function(*args, ranks=Ranks(rank, spec["world_size"]))
    except BaseException as error:
        # Left for rank 0 before this rank leaves the group, so rank 0 reports it rather than a lost peer.
        store.set(f"failed/{rank}", f"{type(error).__name__}: {error}")
        raise
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    # Through the package's module rather than this ``__main__`` copy: one `Ranks` class in the process.
    from rm_worker.training.distributed import _helper_main as helper_main

    helper_main(sys.argv[1], int(sys.argv[2]))
