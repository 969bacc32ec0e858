"""The fast training path (issue #5): the reference iteration, replayed as a CUDA graph.

ConSinGAN's arithmetic is small (about 1.5 PFLOP for a paper-default training); the original spends its
minutes launching kernels one by one from Python and synchronising. This path runs exactly the reference
`iteration_step` (same functions, same randomness drawn in the same order), and changes only how:
- the iteration's random inputs are drawn first and copied into static buffers, then one captured CUDA
  graph replays all its kernels (3 critic steps with the penalty's double backward, the generator step,
  the fused optimizer updates) in a single launch;
- Adam is fused (and capturable, its step counter on the device);
- TF32 is allowed for convolutions and matmuls; bf16 autocast is an option, off until measured stable
  with WGAN-GP's double backward;
- losses reach the progress callback through a pinned buffer copied asynchronously, so the loop never
  waits for the GPU to report progress;
- the learning-rate decay at 80% of a stage changes a baked-in constant, so the graph is re-captured then.
Capture and replay go through `engine.graphs` (a `StepRecorder`). On the CPU this runner executes the step
eagerly by default; with `FastOptions(recorder="trace")` it records and replays through `TraceRecorder`, a
stand-in that bakes in what a CUDA graph bakes in, so the tests exercise the graph logic (fresh inputs
copied into the static buffers, re-capture at the decay) where CI has no GPU. A failed capture falls back
to eager with a warning rather than losing the training.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from engine.graphs import RecorderKind, StepRecorder, make_recorder
from engine.model import TrainedModel
from engine.steps import IterationInputs, StageSetup, draw_iteration_inputs, iteration_step

LOSS_NAMES = ("critic", "adversarial", "reconstruction")


@dataclass(frozen=True)
class FastOptions:
    cuda_graphs: bool = True  # capture one iteration per stage and replay it (CUDA only, unless "trace")
    # "auto": CUDA graphs on CUDA, eager elsewhere; "trace": engine.graphs.TraceRecorder on any device,
    # the CPU stand-in of a CUDA graph that tests use (slower than eager: never in production)
    recorder: RecorderKind = "auto"
    tf32: bool = True  # TF32 tensor cores for convolutions and matmuls (CUDA only)
    fused_adam: bool = True  # one fused kernel per optimizer step
    bf16: bool = False  # autocast forwards to bf16 (CUDA only)
    warmup_iterations: int = 3  # eager iterations per stage before capture: allocations, cuDNN autotuning

    def __post_init__(self) -> None:
        # Adam's state must exist before capture, or every replay would start it from zero
        if self.warmup_iterations < 1:
            raise ValueError("warmup_iterations must be at least 1")


def optimizer_options(device: torch.device, options: FastOptions) -> dict[str, bool]:
    """Adam keyword arguments for this path on this device."""
    if not options.fused_adam:
        return {}
    if device.type == "cuda":
        return {"fused": True, "capturable": options.cuda_graphs}
    return {"fused": True}


@contextlib.contextmanager
def backend_flags(device: torch.device, options: FastOptions) -> Iterator[None]:
    """TF32 and cuDNN autotuning for the duration of a training, restored afterwards."""
    if device.type != "cuda":
        yield
        return
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cuda.matmul.allow_tf32 = options.tf32
    torch.backends.cudnn.allow_tf32 = options.tf32
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved


class AsyncLosses:
    """Losses copied to pinned host memory without waiting; read once the copy has landed."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.host = torch.zeros(len(LOSS_NAMES), pin_memory=self.cuda)
        self.event: torch.cuda.Event | None = None
        self.last: dict[str, float] = dict.fromkeys(LOSS_NAMES, float("nan"))  # until the first copy lands

    def push(self, losses: dict[str, torch.Tensor]) -> None:
        stacked = torch.stack([losses[name].float() for name in LOSS_NAMES])
        self.host.copy_(stacked, non_blocking=self.cuda)
        if self.cuda:
            self.event = torch.cuda.Event()
            self.event.record()

    def read(self, wait: bool = False) -> dict[str, float]:
        """The newest landed values; `wait` blocks for the copy in flight (end of a stage)."""
        if self.event is not None:
            if wait:
                self.event.synchronize()
            if not self.event.query():
                return self.last
        self.last = dict(zip(LOSS_NAMES, self.host.tolist(), strict=True))
        return self.last


class FastStage:
    """Runs one stage's iterations: eager warm-up, then one recorded iteration replayed per iteration."""

    def __init__(
        self, model: TrainedModel, setup: StageSetup, rng: torch.Generator, options: FastOptions
    ) -> None:
        self.model = model
        self.setup = setup
        self.rng = rng
        self.options = options
        self.device = setup.real.device
        self.recorder: StepRecorder | None = (
            make_recorder(self.device, options.recorder) if options.cuda_graphs else None
        )
        self.recorded = False  # whether the recorder holds this stage's iteration at the current rates
        self.captures = 0  # how many times this stage was recorded: 1, plus 1 after the decay
        self.static_inputs: IterationInputs | None = None  # what every replay reads; fresh inputs land here
        self.static_losses: dict[str, torch.Tensor] = {}  # the last iteration's losses (0-d tensors)
        self.iterations_done = 0
        self.losses = AsyncLosses(self.device)

    def step(self, stage0_input: torch.Tensor | None = None) -> None:
        inputs = draw_iteration_inputs(self.model, self.setup, self.rng, stage0_input)
        if self.recorder is not None and self.iterations_done >= self.options.warmup_iterations:
            self._replay(inputs)
        else:
            self.static_losses = self._eager(inputs)
        self.iterations_done += 1
        self._step_schedules()

    def report(self, final: bool = False) -> dict[str, float]:
        """Losses for the progress callback, without a host sync unless `final`."""
        self.losses.push(self.static_losses)
        return self.losses.read(wait=final)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.options.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def _iteration(self, inputs: IterationInputs) -> dict[str, torch.Tensor]:
        with self._autocast():
            return iteration_step(self.model, self.setup, inputs)

    def _eager(self, inputs: IterationInputs) -> dict[str, torch.Tensor]:
        if self.recorder is None:
            return self._iteration(inputs)
        return self.recorder.warm_up(lambda: self._iteration(inputs))

    def _replay(self, inputs: IterationInputs) -> None:
        if not self.recorded and not self._capture(inputs):
            self.static_losses = self._eager(inputs)
            return
        assert self.recorder is not None and self.static_inputs is not None
        # the record reads these buffers and no others: the fresh draw must be copied into them
        for static, fresh in zip(self.static_inputs.noise, inputs.noise, strict=True):
            static.copy_(fresh)
        self.static_inputs.mix.copy_(inputs.mix)
        self.recorder.replay()

    def _capture(self, inputs: IterationInputs) -> bool:
        """Record one iteration (recording runs nothing); False, and eager from now on, if it fails."""
        assert self.recorder is not None
        if self.static_inputs is None:  # a re-capture keeps the buffers: same shapes, same addresses
            self.static_inputs = IterationInputs([z.clone() for z in inputs.noise], inputs.mix.clone())
        static = self.static_inputs
        try:
            self.static_losses = self.recorder.capture(lambda: self._iteration(static))
        except RuntimeError as error:
            warnings.warn(f"graph capture failed, training this stage eagerly: {error}", stacklevel=2)
            self.model.discriminator.requires_grad_(True)
            self.recorder = None
            return False
        self.recorded = True
        self.captures += 1
        return True

    def _step_schedules(self) -> None:
        before = self._learning_rates()
        for scheduler in self.setup.schedulers:
            scheduler.step()
        if self._learning_rates() != before:
            self.recorded = False  # the learning rates are constants inside the recorded kernels

    def _learning_rates(self) -> list[float]:
        optimizers = (self.setup.generator_optimizer, self.setup.discriminator_optimizer)
        return [group["lr"] for optimizer in optimizers for group in optimizer.param_groups]


class CapturedSampler:
    """Random samples at a fixed batch size and output size from one captured generator pass.

    On CUDA the forward is recorded once as a CUDA graph (optionally in bf16 and channels-last memory),
    so a call costs one launch plus filling the noise buffers. Elsewhere it runs eagerly, or through the
    CPU stand-in with `recorder="trace"`, and equals `engine.sample` for the same rng. The returned tensor
    is overwritten by the next call: clone it to keep it.
    """

    def __init__(
        self,
        model: TrainedModel,
        batch: int,
        *,
        scale: tuple[float, float] = (1.0, 1.0),
        use_graph: bool | None = None,
        recorder: RecorderKind = "auto",
        bf16: bool = False,
        channels_last: bool = False,
    ) -> None:
        from engine.noise import noise_shape  # local: keeps this module's import list about training
        from engine.sampling import scaled_shapes

        self.model = model
        self.device = model.device
        self.shapes = scaled_shapes(model, scale)
        self.noise = [
            torch.zeros((batch, *noise_shape(k, size, model.config)), device=self.device)
            for k, size in enumerate(self.shapes)
        ]
        self.bf16 = bf16 and self.device.type == "cuda"
        if channels_last:
            model.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        model.generator.eval()
        self.recorder = make_recorder(self.device, recorder) if use_graph is not False else None
        self.output = torch.empty(0)
        if self.recorder is not None:
            for _ in range(2):
                self.recorder.warm_up(self._forward)
            self.output = self.recorder.capture(self._forward)

    def _forward(self) -> torch.Tensor:
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
            if self.bf16
            else contextlib.nullcontext()
        )
        with torch.no_grad(), autocast:
            return self.model.generator(self.noise, self.shapes, self.model.noise_amp).float()

    def __call__(self, rng: torch.Generator) -> torch.Tensor:
        """[batch, 3, H', W'] in [-1, 1], drawn from `rng` (which lives on the model's device)."""
        for buffer in self.noise:
            buffer.normal_(generator=rng)
        if self.recorder is None:
            self.output = self._forward()
        else:
            self.recorder.replay()
        return self.output
