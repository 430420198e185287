"""check_quality stage: how much the anonymizer changed, what it hid, and what an independent auditor still finds.

- `image_metrics`: PSNR / SSIM over the whole image and outside the sensitive boxes.
- `summary`: per-image records and their aggregate `QualitySummary` (coverage from `tasks.coverage`,
  residual faces from the dlib auditors in `tasks.auditors`).
- `reid`: naive / adaptive ("parrot") / trained re-identification attacks (dlib ResNet embeddings, LDA);
  `linkage`: the identity-free linkage attack.
- `text`: ground-truth strings OCR still reads; `utility`: vanilla-trained task model, raw vs anonymized.
- `compare`: every method on the same raw images → one `MethodRow` each; `plots`: the privacy–utility scatter.
- `samples`: which faces and images are measured; `lpips`: LPIPS-Alex from a configured weights file;
  `manifest`: PNG metadata chunks for the GX suite.
- the stage as the flow runs it: `plan` (which rows each measure reads, shards, settings from params),
  `per_image` (one image's record and file facts, and what is summed from them), `attacks` (face crops and
  the attacks' metrics), `readable` (the text tally), `outputs` (the stage's file names).

Stage packages import no package of their own: each module names what it needs. check_quality uses
anonymize's obfuscators and detectors and train's task model (it measures them); neither imports it.
"""
