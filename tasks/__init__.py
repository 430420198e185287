"""privtrail pure logic: one package per stage, stage-free modules at the bottom. No prefect, mlflow, dvc or file I/O.

Bottom modules, used by several stages: `types` (images, detections, categories), `errors`, `params`,
`codec` (image decode/encode), `boxes` (validation, masks, IoU, padding, NMS), `coverage` (boxes scored
against ground truth), `groundtruth` (the COCO ground truth per image), `auditors` (dlib face detectors
that did not do the anonymizing). Stage packages form an acyclic graph (tests/test_layering.py):
check_quality → anonymize, train, ingest; audit → train.
"""
