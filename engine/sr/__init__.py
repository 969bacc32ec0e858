"""Super-resolution for ConSinGAN models: an SR head trained on a model, run in SinGAN's loop.

head = engine.train_sr_head(model, engine.SRConfig.preset("paper"), rng=engine.make_rng(0, "cuda"))
big = engine.super_resolve(model, head, 4.0, n=2, rng=engine.make_rng(1, "cuda"))  # [2, 3, 4h, 4w]
blob = engine.checkpoint.sr_head_to_bytes(head)

The method is SinGAN's (Shaham et al. 2019, §4; superres-spec.md §1-§2): K = round(3·log2 f) passes of
one upsampling step f^(1/K), each followed by the same image-to-image generator with fresh noise at one
amplitude, then a top-left crop. ConSinGAN has no per-stage RGB generator, so the generator that SinGAN
repeats is trained here as a separate head (spec §3.3, mapping 3B): SinGAN's finest-scale shape, trained
for the step r0 on the model's top image with alpha = 100 and the model's own samples as its adversarial
inputs. The feature-loop mapping (spec §3.2) diverges and is not built.

Decisions (measurements in docs/superres.md):
- Factor range 1 < f <= 8 with K clamped to at least 1 (engine/spec/srmath.py): below 2^(1/6) the original
  crashes; here it is one pass of step f, which the service flags with a step-mismatch warning.
- One head serves every factor: trained for sr_train (default 4, step 2^(1/3), the same step as x2 and x8);
  other factors run steps within ±12 % of it, with a warning above 5 % (SinGAN would retrain per factor).
- Head: 64 channels (quick preset: 32), no BatchNorm, LeakyReLU 0.05 (ConSinGAN's blocks); SinGAN's 128 channels
  with BatchNorm is `channels=128, batch_norm=True`.
- Adversarial inputs: the model's random samples at top size, degraded by one step (spec's proposal).
  `adversarial_source="real"` (the training image itself) measured 0.24 dB lower on average and
  over-sharpened (above the originals' sharpness on 3 of 4 images), though it shrinks back better.
- Generator steps: 1 per iteration (the spec prototype's), not SinGAN's 3: on the quick bench 3 steps
  over-texture (crystalline edges, streaks; 1.2-2.4 dB lower PSNR on every image) where 1 step keeps the scene
  and is still about 3x as sharp as bicubic. `generator_steps=3` is SinGAN's, each step on a freshly
  computed loss (SinGAN reused the first forward's activations for the adversarial term, which PyTorch now
  refuses); the `tiny` test preset uses it because 300 iterations of 1 step stay blurry.
- The critic starts fresh (`discriminator_init="fresh"`, as the spec prototype): on the quick bench it beat
  a copy of the model's top-stage critic (SinGAN's habit) by 0.4 dB PSNR and 2.2 dB shrink-back on average,
  on 3 of 4 images (one seed; a small margin).
- Noise: RGB at every pass (SinGAN's first pass draws grey noise, a quirk of its scale-0 branch).
- 8-bit handling: every pass rounds to 8 bits before resizing, as the engine's imresize (SinGAN
  truncates); the result is clamped to [-1, 1] only at the end, as SinGAN clips only when saving.
"""

from engine.spec.srconfig import SR_PRESETS, SRConfig
from engine.sr.head import SRHead, SRNet
from engine.sr.inference import super_resolve
from engine.sr.training import train_sr_head

__all__ = ["SR_PRESETS", "SRConfig", "SRHead", "SRNet", "super_resolve", "train_sr_head"]
