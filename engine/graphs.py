"""Record one step and replay it: the seam between the fast path and CUDA graphs (issue #12).

A `StepRecorder` runs a step the way capture needs (`warm_up`), records it once (`capture`), and replays
the record (`replay`). A record holds what a CUDA graph holds, and nothing more:
- every kernel's arguments as they were at capture: Python numbers (an optimizer's learning rate, a noise
  amplitude) are baked in, and so is every decision the Python code took while recording (which tensors
  need gradients, which optimizer state exists);
- the tensors the step reads and writes, by their memory at capture: a replay reads only those buffers,
  so fresh inputs must be copied into them (rebinding a name to a new tensor changes nothing it sees);
- its outputs, overwritten in place by every replay; before the first replay they hold garbage.
Capture itself runs nothing: the state the step would change is as it was.

`CudaGraphRecorder` is the real thing. `TraceRecorder` is its stand-in where there is no CUDA (tests): it
records the step's ATen operations below autograd and replays exactly those calls with exactly those
arguments, so the fast path's buffer discipline is exercised, and its mistakes show, on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

Step = TypeVar("Step")  # what a step returns: a tensor, or a dict/list/tuple of tensors
RecorderKind = Literal["auto", "trace"]


class StepRecorder(Protocol):
    def warm_up(self, step: Callable[[], Step]) -> Step:
        """Run `step` now, eagerly, the way a later capture of it needs (allocations, autotuning)."""
        ...

    def capture(self, step: Callable[[], Step]) -> Step:
        """Record `step` without running it, replacing any earlier record. Returns its outputs: static
        tensors that every `replay` overwrites. Raises RuntimeError when the step cannot be recorded."""
        ...

    def replay(self) -> None:
        """Run the record once, on the buffers it was recorded with."""
        ...


def make_recorder(device: torch.device, kind: RecorderKind = "auto") -> StepRecorder | None:
    """A CUDA graph on CUDA and no recorder elsewhere (plain eager); with "trace", the stand-in."""
    if kind == "trace":
        return TraceRecorder()
    if device.type == "cuda":
        return CudaGraphRecorder()
    return None


class CudaGraphRecorder:
    """`torch.cuda.CUDAGraph` behind the `StepRecorder` seam."""

    def __init__(self) -> None:
        # One memory pool for all of this recorder's captures: a re-capture reuses the memory of the graph
        # it replaces instead of holding a second pool.
        self.pool = torch.cuda.graph_pool_handle()
        self.graph: torch.cuda.CUDAGraph | None = None

    def warm_up(self, step: Callable[[], Step]) -> Step:
        # Warm-up runs on a side stream, as capture requires (cuDNN and the allocator settle there).
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            outputs = step()
        torch.cuda.current_stream().wait_stream(side)
        return outputs

    def capture(self, step: Callable[[], Step]) -> Step:
        if self.graph is not None:
            self.graph.reset()  # never replayed again; its memory returns to the pool
            self.graph = None
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=self.pool):
            outputs = step()
        self.graph = graph
        return outputs

    def replay(self) -> None:
        if self.graph is None:
            raise RuntimeError("replay before capture")
        self.graph.replay()


# --- the stand-in -----------------------------------------------------------------------------------------

# Operations a CUDA graph cannot record: reading a value on the host ends the capture with an error.
_HOST_SYNCS = frozenset({"aten::_local_scalar_dense", "aten::nonzero", "aten::equal"})

# A tensor's memory as a CUDA graph knows it: two tensors with the same key are the same buffer.
_MemoryKey = tuple[int, int, tuple[int, ...], tuple[int, ...], torch.dtype]


def _memory_key(tensor: torch.Tensor) -> _MemoryKey:
    return (
        tensor.untyped_storage().data_ptr(),
        int(tensor.storage_offset()),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor.dtype,
    )


@dataclass(frozen=True)
class _Produced:
    """An argument that an earlier operation of the step produced: on replay, that operation's output."""

    op: int
    output: int


@dataclass(frozen=True)
class _Held:
    """A tensor from outside the step (a parameter, a static input, optimizer state): the same object on
    every replay, as a graph reads the same address."""

    tensor: torch.Tensor


@dataclass
class _Call:
    func: torch._ops.OpOverload
    arguments: list[Any]  # flattened (args, kwargs): _Produced, _Held, or a constant baked in at capture
    layout: Any  # the pytree spec that rebuilds (args, kwargs)
    release: list[int]  # earlier calls whose outputs nothing after this one reads


class _Recording(TorchDispatchMode):
    """Sees every ATen call of the step (below autograd, so the backward passes too) and writes it down."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[_Call] = []
        self.produced: dict[_MemoryKey, _Produced] = {}
        self.alive: list[torch.Tensor] = []  # keeps produced memory from being reused while recording
        # held memory, and a copy of it as it was when the record first saw it (not only what the schema
        # marks as written: native_batch_norm updates its running statistics without saying so)
        self.held: dict[int, tuple[torch.UntypedStorage, torch.UntypedStorage]] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = func._schema.name
        if name.startswith("profiler::"):  # an optimizer's record_function markers: not part of the math
            return func(*args, **kwargs)
        if name in _HOST_SYNCS:
            raise RuntimeError(f"{name} reads a value on the host: a CUDA graph cannot capture it")
        if torch.Tag.nondeterministic_seeded in func.tags:
            raise RuntimeError(f"{name} draws random numbers inside the step: draw them before capture")
        flat, layout = tree_flatten((args, kwargs))
        arguments = [self._argument(value) for value in flat]
        result = func(*args, **kwargs)
        outputs, _ = tree_flatten(result)
        index = len(self.calls)
        for position, value in enumerate(outputs):
            if isinstance(value, torch.Tensor):
                self.produced[_memory_key(value)] = _Produced(index, position)
                self.alive.append(value)
        self.calls.append(_Call(func, arguments, layout, []))
        return result

    def _argument(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value  # numbers, shapes, dtypes: baked in, as in a graph's kernel arguments
        produced = self.produced.get(_memory_key(value))
        if produced is not None:
            return produced
        storage = value.untyped_storage()
        if storage.data_ptr() not in self.held:
            self.held[storage.data_ptr()] = (storage, storage.clone())
        return _Held(value)

    def restore_held_memory(self) -> None:
        for storage, before in self.held.values():
            storage.copy_(before)


class TraceRecorder:
    """A CPU stand-in for `CudaGraphRecorder` with the same semantics (module docstring); slow, for tests.

    Also fails capture where CUDA would: a host read (`.item()`, `float(tensor)`) or a random draw inside
    the step raises RuntimeError. What it does not model: streams, and memory that the step allocates and
    Python keeps besides its outputs (a parameter's `.grad`): a graph rewrites it on replay, the stand-in
    leaves it as capture made it, so read a step's results from its outputs only.
    """

    def __init__(self) -> None:
        self.calls: list[_Call] = []
        self.outputs: list[tuple[torch.Tensor, _Produced]] = []  # static output, the call that refreshes it

    def warm_up(self, step: Callable[[], Step]) -> Step:
        return step()

    def capture(self, step: Callable[[], Step]) -> Step:
        self.calls, self.outputs = [], []
        recording = _Recording()
        try:
            with recording:
                result = step()
        finally:
            recording.restore_held_memory()  # capture runs nothing: the state is as it was
        self.calls = recording.calls
        self.outputs = self._static_outputs(result, recording)
        self._plan_releases()
        for static, _ in self.outputs:
            if static.is_floating_point():
                static.fill_(math.nan)  # a graph's outputs hold garbage until its first replay
        return result

    def replay(self) -> None:
        if not self.calls:
            raise RuntimeError("replay before capture")
        results: list[list[Any] | None] = []
        with torch.no_grad():  # the record already holds the backward calls; autograd must not add more
            for call in self.calls:
                flat = [self._resolve(argument, results) for argument in call.arguments]
                args, kwargs = tree_unflatten(flat, call.layout)
                outputs, _ = tree_flatten(call.func(*args, **kwargs))
                results.append(outputs)
                for done in call.release:
                    results[done] = None
            for static, source in self.outputs:
                static.copy_(self._resolve(source, results))

    @staticmethod
    def _resolve(argument: Any, results: list[list[Any] | None]) -> Any:
        if isinstance(argument, _Held):
            return argument.tensor
        if isinstance(argument, _Produced):
            outputs = results[argument.op]
            assert outputs is not None, "released too early"
            return outputs[argument.output]
        return argument

    @staticmethod
    def _static_outputs(result: Any, recording: _Recording) -> list[tuple[torch.Tensor, _Produced]]:
        outputs = []
        for value in tree_flatten(result)[0]:
            if not isinstance(value, torch.Tensor):
                raise RuntimeError(f"a recorded step returns tensors only, not {type(value).__name__}")
            source = recording.produced.get(_memory_key(value))
            if source is not None:  # else it is held memory, which the replay writes in place anyway
                outputs.append((value, source))
        return outputs

    def _plan_releases(self) -> None:
        """Free each call's outputs on replay right after their last reader, as an allocator would."""
        last_read: dict[int, int] = {}
        for index, call in enumerate(self.calls):
            for argument in call.arguments:
                if isinstance(argument, _Produced):
                    last_read[argument.op] = index
        kept = {source.op for _, source in self.outputs}
        for op, reader in last_read.items():
            if op not in kept:
                self.calls[reader].release.append(op)
