"""Every metric's human label, unit and one-line meaning: the one table the report's HTML, Markdown and JSON share."""

# Keys are the machine keys the stages write ("<stage>/<metric>", reports/metrics/<stage>.json), the flat keys
# the gates read ("dp/...", "utility/...", "attacks/...", tasks/report/compliance.py `gate_values`) and the
# compliance.json paths joined by "/" ("quality/psnr_whole", "attacks/lira/dp/auc", "counts/ingested").
# `define` looks a key up exactly (DEFINITIONS), then by family (FAMILIES: keys that come per category, per
# attack, per target model, per method, ...), then under its renamed prefix (RENAMES: "attacks/dp/..." is the
# audit's "audit/dp/...", "quality/..." is check_quality's). Units are words, never empty; a share is always
# "share of <what>" (0–1), so a renderer may print it as a percentage.

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    """What a metric is, for a reader: a short label, its unit in words and its meaning in one line."""

    label: str
    unit: str
    meaning: str


Builder = Callable[[re.Match[str]], Definition]

# ------------------------------------------------------------------------------------------ shared words

YES_NO = "1 = yes, 0 = no"
PASSED = "1 = all passed, 0 = not"
EPS = "ε (natural log)"
DELTA = "δ (probability)"
AUC = "AUC (0.5 = chance)"
PSNR = "dB (100 = identical)"
SSIM = "SSIM (1 = identical)"
MSSSIM = "MS-SSIM (1 = identical)"
AUDITOR = "the independent detector (dlib HOG, not used to anonymize)"

WHICH: dict[str, str] = {"dp": "DP model", "nonprivate": "non-private baseline"}

# category → (singular, plural noun): the ground-truth and detection categories of tasks/types.py and the detectors
CATEGORIES: dict[str, tuple[str, str]] = {
    "face": ("face", "faces"),
    "body": ("body", "bodies"),
    "plate": ("licence plate", "licence plates"),
    "text_pii": ("personal text", "personal-text boxes"),
    "text_nonpii": ("non-personal text", "non-personal-text boxes"),
    "placard": ("task placard", "task placards"),
    "text": ("text", "text regions"),
}
# text category → (label, strings OCR reads) (tasks/check_quality/text.py)
TEXTS: dict[str, tuple[str, str]] = {
    "text_pii": ("Personal text", "personal strings (names, phones, e-mails)"),
    "plate": ("Licence plates", "licence-plate strings"),
    "text_nonpii": ("Non-personal text", "non-personal strings (signs)"),
}

ATTACKS: dict[str, str] = {
    "loss_threshold": "Loss-threshold attack",
    "shadow": "Shadow-model attack",
    "lira_online": "LiRA (online)",
    "lira_offline": "LiRA (offline)",
    "lira": "LiRA (worse of online and offline)",
}
# what each attack does, short enough to sit inside a one-line meaning
ATTACK_HOW: dict[str, str] = {
    "loss_threshold": "low loss means 'trained on', Yeom et al. 2018",
    "shadow": "a classifier trained on shadow models' outputs, Shokri et al. 2017",
    "lira_online": "likelihood ratio vs shadow models trained with and without each image, Carlini et al. 2022",
    "lira_offline": "likelihood test vs shadow models trained without each image, Carlini et al. 2022",
    "lira": "the worse of LiRA online and offline, Carlini et al. 2022",
}

METHODS: dict[str, str] = {
    "none": "No anonymization (clear calibration)",
    "blur": "Blur",
    "pixelate": "Pixelation",
    "mask": "Solid mask",
    "dp_pixelate": "DP pixelization",
    "inpaint": "Inpainting",
    "replace": "k-Same face replacement",
}


def _d(label: str, unit: str, meaning: str) -> Definition:
    return Definition(label, unit, meaning)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------------------------------------ exact keys

_INGEST: dict[str, Definition] = {
    "ingest/n_inputs": _d(
        "Files offered to ingest",
        "files",
        "Every image (or video) found or generated at the source: those ingested plus those "
        "refused. A video counts once, however many frames it gives.",
    ),
    "ingest/n_ingested": _d(
        "Images ingested", "images", "Images read, checked and written to the raw dataset."
    ),
    "ingest/n_quarantined": _d(
        "Images refused at ingest",
        "images",
        "Images not ingested (unreadable, unsafe name, unsupported format, no label...), "
        "each listed with its reason.",
    ),
    "ingest/gx_success": _d(
        "Raw manifest checks passed",
        PASSED,
        "Whether the Great Expectations suite on the raw manifest (row count, unique ids and "
        "digests, sizes, labels, splits) passed.",
    ),
    "ingest/gx_failed_expectations": _d(
        "Raw manifest checks failed",
        "checks",
        "How many checks of the raw manifest's Great Expectations suite failed.",
    ),
    "ingest/n_annotations": _d(
        "Ground-truth boxes ingested",
        "boxes",
        "Ground-truth boxes of every category (faces, bodies, plates, text, placards) in the "
        "ingested images.",
    ),
    "ingest/labelled": _d(
        "Data has task labels",
        YES_NO,
        "Whether the images carry task labels; without them no model is trained or audited.",
    ),
    "ingest/n_classes": _d(
        "Task classes", "classes", "Number of distinct task labels (for the built-in data: the digits 0–9)."
    ),
    "ingest/n_identities": _d(
        "Known identities",
        "people",
        "Distinct people whose faces the built-in data shows: the identities the "
        "re-identification attacks try to name.",
    ),
    "ingest/n_person_ids": _d(
        "Person ids in the ground truth",
        "people",
        "Distinct person or track ids in the imported COCO ground truth.",
    ),
    "ingest/n_resized": _d(
        "Images downscaled at ingest",
        "images",
        "Images larger than ingest.max_side, downscaled before any later stage reads them.",
    ),
    "ingest/max_train_images_per_person": _d(
        "Most training images of one person",
        "images",
        "The most training images one known person appears in: the per-image "
        "DP guarantee is stretched this many times for that person.",
    ),
    "ingest/n_train": _d(
        "Training images",
        "images",
        "Images in the train split: the DP model learns from them (the audit's members).",
    ),
    "ingest/n_holdout": _d(
        "Holdout images", "images", "Images never trained on, kept for the attack audit (its non-members)."
    ),
    "ingest/n_test": _d("Test images", "images", "Images used only to measure task accuracy."),
    "ingest/coco_n_images": _d(
        "COCO images accepted", "images", "Images listed in the COCO file and accepted for reading."
    ),
    "ingest/coco_n_rejected_images": _d(
        "COCO images rejected",
        "images",
        "Images listed in the COCO file but refused (unsafe, hidden or unsupported file name); never read.",
    ),
    "ingest/coco_n_annotations": _d(
        "COCO annotations in the file", "annotations", "Annotations in the COCO file, of any category."
    ),
    "ingest/coco_n_boxes": _d(
        "COCO boxes kept",
        "boxes",
        "COCO annotations of accepted images mapped to a privtrail category (ingest.categories).",
    ),
    "ingest/coco_n_ignored": _d(
        "COCO annotations ignored",
        "annotations",
        "COCO annotations of a category that no privtrail category lists (ingest.categories).",
    ),
    "ingest/coco_n_dropped": _d(
        "COCO annotations dropped", "annotations", "COCO annotations of rejected images, dropped unread."
    ),
}

_ANONYMIZE: dict[str, Definition] = {
    "anonymize/images": _d(
        "Images given to anonymization",
        "images",
        "Raw images the anonymize stage processed: anonymized plus quarantined.",
    ),
    "anonymize/processed": _d(
        "Images anonymized",
        "images",
        "Images anonymized, checked again and written to the anonymized dataset.",
    ),
    "anonymize/quarantined": _d(
        "Images quarantined by anonymization",
        "images",
        "Images withheld (unreadable, or something sensitive was still found): never "
        "written to the output, never trained on.",
    ),
    "anonymize/verify_enabled": _d(
        "Output re-checked by the detectors",
        YES_NO,
        "Whether anonymize re-ran its detectors on each output (anonymize.verify "
        "regions or whole) and quarantined images where something survived.",
    ),
    "anonymize/quarantine_fraction": _d(
        "Share of images quarantined",
        "share of images",
        "Images quarantined by anonymization divided by the images ingested.",
    ),
    "anonymize/escalated_images": _d(
        "Images that needed a second pass",
        "images",
        "Images where the check after anonymization still found something, so those "
        "areas were redone (their own method on a slightly larger region, then, as a "
        "last resort, a solid mask) and checked again.",
    ),
    "anonymize/masked_images": _d(
        "Images with a solid mask",
        "images",
        "Written images where redoing a region with its own method did not pass the "
        "check, so that region was filled solid black (the last round before "
        "quarantine).",
    ),
    "anonymize/dp_images": _d(
        "Images with DP pixelization",
        "images",
        "Images in which at least one region was pixelated with differential-privacy noise.",
    ),
    "anonymize/dp_epsilon_max": _d(
        "Largest DP-pixelization ε per image",
        EPS,
        "The largest per-image ε of the DP pixelization (Fan 2018); smaller means more noise, more privacy.",
    ),
    "anonymize/gt_changed_outside_fraction": _d(
        "Pixels changed outside the sensitive boxes",
        "share of pixels",
        "Share of pixels outside the ground-truth face, plate and "
        "personal-text boxes that anonymization changed (strict).",
    ),
    "anonymize/gt_changed_outside_margin_fraction": _d(
        "Pixels changed beyond the box margin",
        "share of pixels",
        "The same outside the boxes grown by 20 % per side: "
        "collateral damage such as false-positive redactions.",
    ),
    "anonymize/gt_images_scored": _d(
        "Images scored against ground truth",
        "images",
        "Written images whose redactions were compared with their ground-truth boxes.",
    ),
    "anonymize/gt_residual_face_rate": _d(
        "Residual face rate (anonymize stage)",
        "share of faces",
        f"Share of ground-truth faces {AUDITOR} still finds on the written images.",
    ),
    "anonymize/gt_text_nonpii_kept": _d(
        "Non-personal text left readable",
        "share of non-personal-text boxes",
        "Share of ground-truth non-personal text boxes (signs) not covered by a redaction: utility kept.",
    ),
}

_QUALITY: dict[str, Definition] = {
    "check_quality/n_images": _d(
        "Images quality-checked",
        "images",
        "Anonymized images the quality check measured (every written image).",
    ),
    "check_quality/n_images_no_outside": _d(
        "Images with no pixel outside the boxes",
        "images",
        "Images whose sensitive boxes cover every pixel, so they have no 'outside the boxes' quality value.",
    ),
    "check_quality/n_gt_faces": _d(
        "Ground-truth faces quality-checked", "faces", "Ground-truth faces in the quality-checked images."
    ),
    "check_quality/auditor_raw_face_recall": _d(
        "Auditor's face recall on raw images",
        "share of faces",
        f"Share of ground-truth faces {AUDITOR} finds on raw images: what it can see at all.",
    ),
    "check_quality/auditor_raw_detections_per_image": _d(
        "Auditor face detections per raw image",
        "detections per image",
        "Faces the independent detector (dlib HOG) reports per raw image it ran on.",
    ),
    "check_quality/auditor_calibration_images": _d(
        "Raw images the auditor ran on",
        "images",
        "Sample of raw images the independent detector also ran on, to measure its own recall.",
    ),
    "check_quality/auditor_calibration_faces": _d(
        "Raw faces the auditor's recall is measured on",
        "faces",
        "Ground-truth faces in the raw images the independent detector "
        "ran on: the sample of its recall (and of its gate's interval).",
    ),
    "check_quality/ocr_auditor_raw_recall": _d(
        "Independent OCR's recall on raw text",
        "share of strings",
        "Share of the ground-truth strings of its weakest category (personal "
        "text or plates: the lower 95 % bound decides) the independent OCR "
        "(not the anonymizer's) reads on raw images: what it can read.",
    ),
    "check_quality/ocr_auditor_raw_n": _d(
        "Raw strings the independent OCR's recall is measured on",
        "strings",
        "Ground-truth strings of that weakest category the independent OCR tried to read on raw images.",
    ),
    "check_quality/residual_face_detections": _d(
        "Auditor face detections after anonymization",
        "detections",
        "Faces the independent detector (dlib HOG) reports on the "
        "anonymized images, whether on a real face or not.",
    ),
    "check_quality/residual_face_rate": _d(
        "Auditor face detections per anonymized image",
        "detections per image",
        "Faces the independent detector (dlib HOG) reports per anonymized "
        "image, real or not (k-Same surrogate faces count too).",
    ),
    "check_quality/residual_faces_matched": _d(
        "Ground-truth faces still found",
        "faces",
        "Ground-truth faces the independent detector (dlib HOG) still finds "
        "on the anonymized images (box overlap IoU >= 0.3).",
    ),
    "check_quality/residual_face_matched_rate": _d(
        "Residual face rate",
        "share of faces",
        f"Share of ground-truth faces {AUDITOR} still finds on the anonymized images.",
    ),
    "check_quality/face_redaction_recall_detector_proxy": _d(
        "Face redaction recall, detector proxy",
        "share of detected faces",
        "Without ground truth: share of the faces dlib HOG "
        "finds on raw images that a redaction covers by >= "
        "70 %.",
    ),
    "check_quality/residual_face_detections_per_image_proxy": _d(
        "Auditor face detections per anonymized image, proxy",
        "detections per image",
        "Without ground truth: faces dlib HOG still reports "
        "per anonymized image (same value as the "
        "detections-per-image row).",
    ),
    "check_quality/reid_trained_accuracy": _d(
        "Re-identification by a trained attacker",
        "share of faces",
        "Share of anonymized faces a classifier trained on obfuscated faces "
        "of the identities names correctly (McPherson et al. 2016).",
    ),
    "check_quality/reid_chance": _d(
        "Re-identification chance level",
        "share of faces",
        "Top-1 rate of a random guess among the identities (1 / 100 for the built-in data).",
    ),
    "check_quality/reid_worst_rate": _d(
        "Re-identification, strongest attacker",
        "share of faces",
        "The highest top-1 rate of the naive, adaptive and trained attackers.",
    ),
    "check_quality/reid_n_probes": _d(
        "Faces attacked for re-identification",
        "faces",
        "Anonymized faces the re-identification attacks tried to name.",
    ),
    "check_quality/linkage_chance": _d(
        "Linkage chance level",
        "share of faces",
        "Top-1 rate of a random guess: 1 / N, N the faces in the linkage sample.",
    ),
    "check_quality/linkage_n_faces": _d(
        "Faces in the linkage sample",
        "faces",
        "Faces the linkage attack used (at most one per known person).",
    ),
    "check_quality/linkage_advantage": _d(
        "Linkage advantage over chance",
        "share of faces above chance",
        "Top-1 rate at which the stronger attacker links anonymized faces back to "
        "their own raw face, minus chance 1/N; needs no identities.",
    ),
    "check_quality/linkage_from_ground_truth": _d(
        "Linkage faces from ground truth",
        "1 = ground truth, 0 = detections",
        "Whether the linkage sample's face boxes came from ground truth (1) "
        "or from the anonymizer's own detections (0).",
    ),
    "check_quality/utility_raw_accuracy": _d(
        "Task accuracy on raw test images",
        "share of test images",
        "Accuracy of a model trained on raw images, tested on raw test images.",
    ),
    "check_quality/utility_anon_accuracy": _d(
        "Task accuracy on anonymized test images",
        "share of test images",
        "The same model tested on the same test images after anonymization.",
    ),
    "check_quality/utility_ratio": _d(
        "Utility ratio",
        "ratio (1 = no loss)",
        "Task accuracy on anonymized test images divided by that on the raw ones "
        "(model trained on raw images).",
    ),
    "check_quality/utility_n_images": _d(
        "Test images for the utility check",
        "images",
        "Test images (anonymized, not quarantined) the utility model was scored on.",
    ),
    "check_quality/utility_discordant_share": _d(
        "Test images whose outcome anonymization changed",
        "share of test images",
        "Test images classified right on one version (raw or anonymized) "
        "and wrong on the other: the paired interval of the utility "
        "ratio rests on it.",
    ),
    "check_quality/text_n_images": _d(
        "Images read by OCR", "images", "Sample of images OCR read, raw and anonymized, for the text checks."
    ),
    "check_quality/body_preserved": _d(
        "Bodies still detected after anonymization",
        "share of detections",
        "Share of body detections on raw images found again after anonymization "
        "(bodies are not targeted: utility kept).",
    ),
    "check_quality/body_raw_detections": _d(
        "Body detections on raw images",
        "detections",
        "Bodies the body detector finds on the raw images of the OCR sample.",
    ),
    "check_quality/face_preserved": _d(
        "Faces still detected after anonymization",
        "share of detections",
        "Share of the auditor's face detections on raw images found again after "
        "anonymization (faces are not targeted: utility kept).",
    ),
    "check_quality/face_raw_detections": _d(
        "Face detections on raw images (faces not targeted)",
        "detections",
        "Faces the auditor finds on the raw images of the OCR sample.",
    ),
    "check_quality/appearance_changed_share": _d(
        "Pixels changed", "share of pixels", "Share of all pixels anonymization changed (any channel)."
    ),
    "check_quality/appearance_changed_outside": _d(
        "Pixels changed outside the padded sensitive boxes",
        "share of pixels",
        "Share of the pixels outside the padded sensitive boxes that "
        "anonymization changed (0 = nothing else touched).",
    ),
    "check_quality/appearance_border_edge_energy": _d(
        "Edge energy on the redaction borders",
        "ratio (1 = no seam)",
        "Mean gradient of the output on a 2-px ring around each visible "
        "change over the raw image's on the same ring (> 1: a seam).",
    ),
    "check_quality/appearance_regions_per_image": _d(
        "Redaction regions per image", "regions", "Connected regions of visible change per anonymized image."
    ),
    "check_quality/appearance_nested_regions": _d(
        "Redactions with a seam inside",
        "regions",
        "Regions showing a hard straight edge inside them: a second redaction within or across the first.",
    ),
    "check_quality/appearance_flat_regions": _d(
        "Solid redactions", "regions", "Regions filled with one flat colour (a mask), over all images."
    ),
    "check_quality/appearance_seam_regions": _d(
        "Redactions with a visible outline",
        "regions",
        "Regions whose own border ring has 1.5 times the raw image's edge energy or more, over all images.",
    ),
    "check_quality/appearance_black_regions": _d(
        "Black redactions", "regions", "Solid regions that are black (a mask), over all images."
    ),
    "check_quality/lpips_available": _d(
        "LPIPS measured",
        YES_NO,
        "Whether the perceptual distance LPIPS ran (it needs AlexNet weights, check_quality.lpips_weights).",
    ),
    "check_quality/lpips_mean": _d(
        "Perceptual distance (LPIPS)",
        "LPIPS distance (0 = identical)",
        "Mean learned perceptual distance of anonymized to raw images (Zhang et al. "
        "2018); higher = looks more different.",
    ),
    "check_quality/gx_success": _d(
        "Anonymized manifest checks passed",
        PASSED,
        "Whether the Great Expectations suite passed: manifest vs files re-read from disk "
        "(hash, size, no metadata, none extra or missing), counts, dlib residual faces.",
    ),
    "check_quality/gx_failed_expectations": _d(
        "Anonymized manifest checks failed",
        "checks",
        "How many checks of the anonymized manifest's Great Expectations suite failed.",
    ),
}

_TRAIN: dict[str, Definition] = {
    "train/noise_multiplier": _d(
        "DP noise multiplier σ",
        "σ (noise std ÷ clipping norm)",
        "Gaussian noise added to each step's summed gradients, relative to the clipping "
        "norm; larger = more private.",
    ),
    "train/sample_rate": _d(
        "DP sampling rate",
        "probability per step",
        "Chance that a given image is in a step's batch (Poisson sampling): 1 ÷ the steps per epoch.",
    ),
    "train/steps": _d("DP-SGD steps", "steps", "Noisy gradient steps DP-SGD took; each one spends privacy."),
    "train/epochs": _d(
        "Training epochs",
        "passes over the data",
        "Passes over the training images (the DP model and the baseline alike).",
    ),
    "train/target_epsilon": _d(
        "Target ε",
        EPS,
        "The ε the noise was calibrated to reach at the end of training (train.dp.target_epsilon).",
    ),
    "train/target_delta": _d(
        "DP δ", DELTA, "The δ of the (ε, δ) guarantee: the small probability allowed for the ε bound to fail."
    ),
    "train/epsilon": _d(
        "DP ε",
        EPS,
        "Privacy loss per image the training accountant reports for the released DP model at δ; "
        "smaller = stronger guarantee.",
    ),
    "train/max_grad_norm": _d(
        "Gradient clipping norm",
        "L2 norm of a gradient",
        "Each image's gradient is clipped to this length before noise is added, which bounds "
        "any one image's influence.",
    ),
    "train/n_train": _d(
        "DP training images", "images", "Images the DP model was trained on (the anonymized train split)."
    ),
    "train/batch_size": _d(
        "Logical batch size",
        "images per step",
        "Batch size asked for (train.batch_size); with Poisson sampling a step holds about sampling "
        "rate × training images.",
    ),
    "train/dp_test_accuracy": _d(
        "DP model test accuracy",
        "share of test images",
        "Share of anonymized test images the DP model labels correctly.",
    ),
    "train/nonprivate_test_accuracy": _d(
        "Non-private baseline test accuracy",
        "share of test images",
        "The same model trained without DP (same schedule): shows what DP costs in accuracy.",
    ),
    "train/dp_train_accuracy": _d(
        "DP model training accuracy",
        "share of training images",
        "Share of training images the DP model labels correctly; far above test accuracy "
        "hints at memorisation.",
    ),
    "train/nonprivate_train_accuracy": _d(
        "Non-private baseline training accuracy",
        "share of training images",
        "Share of training images the baseline labels correctly.",
    ),
    "train/n_test": _d(
        "Test images (train stage)", "images", "Anonymized test images the accuracies are measured on."
    ),
    "train/world_size": _d(
        "Training processes",
        "processes",
        "Processes DP-SGD ran on (distributed training; the same accounting).",
    ),
    "train/dp_seconds": _d("DP training time", "seconds", "Wall-clock time DP-SGD training took."),
    "train/nonprivate_seconds": _d(
        "Baseline training time", "seconds", "Wall-clock time the non-private baseline's training took."
    ),
    "train/ledger_runs": _d(
        "Ledger: DP runs on this dataset",
        "training runs",
        "DP training runs the privacy ledger records on this dataset, this one included.",
    ),
    "train/ledger_total_epsilon": _d(
        "Ledger: composed ε",
        EPS,
        "Privacy loss of all DP runs on this dataset together, composed by one "
        "accountant: what the people in it have spent in total.",
    ),
    "train/ledger_sum_epsilon": _d(
        "Ledger: sum of the runs' ε",
        EPS,
        "Plain sum of each run's own ε: a looser upper bound than the composed total.",
    ),
    "train/ledger_max_total_epsilon": _d(
        "Ledger: ε budget",
        EPS,
        "The most total ε allowed on this dataset (train.budget.max_total_epsilon); "
        "a run that would exceed it is refused.",
    ),
    "train/ledger_remaining_epsilon": _d(
        "Ledger: ε left", EPS, "Budget minus composed ε: what later runs on this dataset may still spend."
    ),
    # train.dp.unit not image (tasks/train/person.py): the cap on each unit's images and the per-unit ε
    "train/unit_cap": _d(
        "Per-unit cap",
        "images per unit",
        "The most training images one unit (person, video) kept: train.dp.cap or chosen from the data.",
    ),
    "train/unit_n_before": _d(
        "Train images before the cap", "images", "Train split images before each unit's cap."
    ),
    "train/unit_n_kept": _d(
        "Train images kept under the cap", "images", "Train images DP-SGD used after every unit was capped."
    ),
    "train/unit_n_units": _d(
        "Units among the kept images",
        "units",
        "Distinct units (persons, videos, images of nobody) in the kept training images.",
    ),
    "train/unit_max_observed": _d(
        "Most kept images of one unit",
        "images",
        "The most kept training images of any one unit; never above the cap.",
    ),
    "train/unit_epsilon_pld": _d(
        "Per-unit ε (mixture PLD)",
        EPS,
        "ε for one whole unit: dp-accounting's PLD of the subsampled mixture of Gaussians.",
    ),
    "train/unit_epsilon_prv": _d(
        "Per-unit ε (independent PRV)",
        EPS,
        "The same per-unit ε from privtrail's own PRV accountant, sharing no code with dp-accounting.",
    ),
    "train/unit_checked": _d("Per-unit ε checked", EPS, "The larger of the two per-unit ε: the one stated."),
    "train/skipped": _d(
        "Training skipped",
        YES_NO,
        "1 when the data had no labels: no model was trained, so none was released.",
    ),
}

_AUDIT: dict[str, Definition] = {
    "audit/dp/empirical_epsilon_margin": _d(
        "Empirical ε margin (audit stage)",
        EPS,
        "The ε training reported (Opacus) minus the empirical ε lower bound "
        "the attacks proved: the audit stage's own check, which stops the "
        "pipeline when negative. The report's gate uses the checked ε.",
    ),
    "audit/dp/empirical_epsilon_confidence": _d(
        "Confidence of the empirical ε bound",
        "probability",
        "Joint confidence that every pre-registered lower bound holds "
        "(1 − α, split over the tests by Bonferroni).",
    ),
    "audit/dp/empirical_epsilon_tests": _d(
        "Pre-registered ε tests",
        "tests",
        "Tests fixed before any score was seen whose bounds make the reported "
        "empirical ε (LiRA online and the canary audit).",
    ),
    "audit/dp/canary/n_canaries": _d(
        "Canaries",
        "canaries",
        "Synthetic images (random ink blobs, no user data), each put into one extra DP "
        "training run by a fair coin flip.",
    ),
    "audit/dp/canary/n_guesses": _d(
        "Canary guesses",
        "guesses",
        "Canaries the auditor bets on (half 'in', half 'out', by score); it abstains on the rest.",
    ),
    "audit/dp/canary/n_correct": _d(
        "Canary guesses right", "guesses", "Guesses that matched whether the canary was really trained on."
    ),
    "audit/dp/canary/epsilon_lower_bound": _d(
        "Canary ε lower bound",
        EPS,
        "ε the one-run canary audit proves at its confidence (Steinke et al. "
        "2023): the true ε is at least this.",
    ),
    "audit/dp/canary/beta": _d(
        "Canary audit error level β",
        "probability (1 − confidence)",
        "Chance that the canary bound is wrong: the audit's α split over the pre-registered tests.",
    ),
    "audit/dp/canary/ceiling": _d(
        "Canary audit ceiling",
        EPS,
        "The largest ε the canary audit could ever prove (every guess right): it cannot "
        "reveal a leak above this.",
    ),
    "audit/dp/canary/ceiling_ratio": _d(
        "Canary ceiling ÷ target ε",
        "× the target ε",
        "Canary ceiling over the target ε (train.dp.target_epsilon), as the audit "
        "stage saw it. The report's gate and text divide by the checked ε.",
    ),
    "audit/seconds_membership": _d(
        "Membership audit time",
        "seconds",
        "Wall-clock time of the membership attacks, shadow models and canary run.",
    ),
    "audit/seconds": _d("Attack audit time", "seconds", "Wall-clock time of the whole attack audit."),
    "audit/skipped": _d(
        "Attack audit skipped",
        YES_NO,
        "1 when no model was trained (no labels): there was nothing to attack.",
    ),
}

_REPORT: dict[str, Definition] = {
    "dp/epsilon_recomputed": _d(
        "ε recomputed (fresh accountant)",
        EPS,
        "ε re-priced at report time from the recorded noise history by a fresh accountant "
        "of the same kind; must match training's.",
    ),
    "dp/epsilon_pld": _d(
        "ε from an independent accountant (PLD)",
        EPS,
        "ε of the recorded noise history by Google's dp-accounting privacy-loss-distribution "
        "accountant: a second opinion.",
    ),
    # the audit's two numbers that compare with ε, re-priced against the claim (compliance.against_claim)
    "dp/empirical_epsilon_margin": _d(
        "Empirical ε margin below the claimed ε",
        EPS,
        "The checked ε (the claim) minus the empirical ε lower bound the "
        "attacks proved; negative: the attacks prove more than the claim.",
    ),
    "dp/canary_ceiling_ratio": _d(
        "Canary ceiling ÷ claimed ε",
        "× the claimed ε",
        "Canary ceiling over the checked ε: below 1 the audit could not catch a broken "
        "DP-SGD even in principle.",
    ),
    "dp/epsilon_checked": _d(
        "ε checked",
        EPS,
        "The larger of the fresh Opacus and the independent PLD ε: the value the ε gate checks.",
    ),
    "dp/epsilon_understatement": _d(
        "ε understatement vs the PLD accountant",
        "share of the PLD ε",
        "(PLD ε − reported ε) ÷ PLD ε; infinite when a fresh Opacus accountant "
        "disagrees with training by more than 1 %.",
    ),
    "dp/epsilon_image": _d(
        "ε per image",
        EPS,
        "A per-unit run's ε for one image (the checked ε of the recorded history); the headline is "
        "the per-unit ε.",
    ),
    "dp/unit_problems": _d(
        "Per-unit accounting problems",
        "problems",
        "Problems re-pricing the per-unit ε from the data (unit above the cap, accountants "
        "disagreeing); 0 passes.",
    ),
    "dp/ledger_delta": _d(
        "Ledger δ", DELTA, "The δ at which the ledger composes all runs' ε (train.budget.delta)."
    ),
    "dp/group/epsilon": _d(
        "Per-person ε (group privacy)",
        EPS,
        "ε for one person in k training images: k × the per-image ε (group privacy, Dwork & "
        "Roth 2014); k = most images of one person.",
    ),
    "dp/group/delta": _d(
        "Per-person δ (group privacy)",
        DELTA,
        "δ for one person in k images: k·e^((k−1)ε)·δ, capped at 1 (a δ of 1 promises nothing).",
    ),
    "dp/secure_mode": _d(
        "Cryptographically secure noise",
        YES_NO,
        "Whether the DP noise came from a cryptographically secure generator (Opacus secure mode).",
    ),
    "dp/poisson_sampling": _d(
        "Poisson sampling",
        YES_NO,
        "Whether each image joined each batch independently at the sampling rate, as the accountant assumes.",
    ),
    "report/passed": _d(
        "Report verdict: pass",
        "1 = pass, 0 = fail",
        "1 when every gate passed or was waived with a written reason.",
    ),
    "report/gates_total": _d("Gates", "gates", "Gates evaluated, whatever their state."),
    "report/gates_passed": _d("Gates passed", "gates", "Gates whose measured value met the threshold."),
    "report/gates_failed": _d(
        "Gates failed", "gates", "Gates whose value missed the threshold or was not measured (fail closed)."
    ),
    "report/gates_waived": _d(
        "Gates waived", "gates", "Gates set aside in gates_waived, each with a written reason."
    ),
    "report/gates_not_assessed": _d(
        "Gates not assessed",
        "gates",
        "Gates the data cannot measure (no ground truth, identities or labels), with why.",
    ),
    "retention/age_days": _d("Age of the raw data", "days", "Days since the raw images were ingested."),
    "retention/raw_days": _d(
        "Raw data retention limit",
        "days",
        "Most days raw images may be kept after ingest (retention.raw_days).",
    ),
    "retention/expired": _d(
        "Raw data past its retention limit",
        YES_NO,
        "1 when raw images are present and older than the limit (or of unknown age): a purge is due.",
    ),
    "retention/raw_present": _d(
        "Raw data present", YES_NO, "Whether raw (un-anonymized) images are still in the workspace."
    ),
    "purge/deleted_workspace_files": _d(
        "Purge: workspace files deleted", "files", "Raw files the purge deleted from the workspace."
    ),
    "purge/deleted_workspace_bytes": _d(
        "Purge: workspace bytes deleted", "bytes", "Bytes of raw files the purge deleted from the workspace."
    ),
    "purge/deleted_cache_objects": _d(
        "Purge: cache objects deleted", "files", "Raw-data objects the purge deleted from the DVC cache."
    ),
    "purge/deleted_cache_bytes": _d(
        "Purge: cache bytes deleted",
        "bytes",
        "Bytes of raw-data objects the purge deleted from the DVC cache.",
    ),
    "purge/missing_cache_objects": _d(
        "Purge: cache objects already gone",
        "files",
        "Raw-data objects the purge expected in the DVC cache but did not find.",
    ),
    "purge/deleted_remote_objects": _d(
        "Purge: remote objects deleted",
        "files",
        "Raw-data objects the purge deleted from the default DVC remote.",
    ),
    "purge/missing_remote_objects": _d(
        "Purge: remote objects already gone",
        "files",
        "Raw-data objects the purge expected on the DVC remote but did not find.",
    ),
    "promote/version": _d(
        "Registered model version",
        "version number",
        "Model-registry version under which the audited DP model was promoted.",
    ),
}

_CANONICAL: dict[str, Definition] = _INGEST | _ANONYMIZE | _QUALITY | _TRAIN | _AUDIT | _REPORT

# Other keys of the same quantity (alias → its key; the same Definition): compliance.json sections, gates' flat keys.
ALIASES: dict[str, str] = {
    "audit/dp/theoretical_epsilon": "train/epsilon",
    "report/epsilon_recomputed": "dp/epsilon_recomputed",
    "report/raw_retention_expired": "retention/expired",
    "dp/epsilon": "train/epsilon",
    "dp/delta": "train/target_delta",
    "dp/target_epsilon": "train/target_epsilon",
    "dp/noise_multiplier": "train/noise_multiplier",
    "dp/sample_rate": "train/sample_rate",
    "dp/steps": "train/steps",
    "dp/epochs": "train/epochs",
    "dp/max_grad_norm": "train/max_grad_norm",
    "dp/n_train": "train/n_train",
    "dp/batch_size": "train/batch_size",
    "dp/ledger_total_epsilon": "train/ledger_total_epsilon",
    "dp/ledger_runs": "train/ledger_runs",
    "dp/ledger_max_total_epsilon": "train/ledger_max_total_epsilon",
    "dp/group/images_per_person": "ingest/max_train_images_per_person",
    "counts/ingested": "ingest/n_ingested",
    "counts/anonymized": "anonymize/processed",
    "counts/quarantined": "anonymize/quarantined",
    "counts/ingest_quarantined": "ingest/n_quarantined",
    "counts/masked": "anonymize/masked_images",
    "audit_design/confidence": "audit/dp/empirical_epsilon_confidence",
    "audit_design/canaries": "audit/dp/canary/n_canaries",
    "audit_design/guesses": "audit/dp/canary/n_guesses",
    "audit_design/ceiling": "audit/dp/canary/ceiling",
    "audit_design/ceiling_ratio": "dp/canary_ceiling_ratio",
    # targets that are family keys (resolved once FAMILIES exists, below)
    "dp/empirical_epsilon_lower_bound": "audit/dp/empirical_epsilon_lower_bound",
    "audit_design/exploratory": "audit/dp/exploratory_epsilon_lower_bound",
}

# A key under one of these prefixes is the same quantity as the key with the replacement prefix (first match).
RENAMES: tuple[tuple[str, str], ...] = (
    ("attacks/", "audit/"),  # compliance.gate_values: the gates' "attacks/<which>/..." = "audit/<which>/..."
    ("utility/", "train/"),  # compliance.json "utility" and the gates' "utility/dp_test_accuracy"
    ("quality/", "check_quality/"),  # compliance.json "quality": check_quality's keys without their prefix
    ("anonymization/", "anonymize/"),  # compliance.json "anonymization"
    ("gate_states/", "report/gates_"),  # compliance.json "gate_states"
    ("inventory/counts/anonymize_", "anonymize/"),  # compliance.json "inventory" (tasks/report/inventory.py)
    ("inventory/counts/", "ingest/"),
    ("inventory/retention/", "retention/"),
)

# ------------------------------------------------------------------------------------------ families


def _category(m: re.Match[str]) -> tuple[str, str, str]:
    """(Singular, plural, key) of the match's "cat" group."""
    cat = m["cat"]
    one, many = CATEGORIES.get(cat, (cat.replace("_", " "), cat.replace("_", " ") + " boxes"))
    return one, many, cat


def _ingest_gt(m: re.Match[str]) -> Definition:
    one, many, _ = _category(m)
    return _d(f"Ground-truth {one} boxes ingested", "boxes", f"Ground-truth {many} in the ingested images.")


def _detections(m: re.Match[str]) -> Definition:
    one, many, _ = _category(m)
    return _d(
        f"{_cap(one)} regions redacted",
        "boxes",
        f"{_cap(many)} the anonymizer's detectors found and obfuscated (first pass, all images).",
    )


def _anon_gt(m: re.Match[str]) -> Definition:
    one, many, _ = _category(m)
    if m["field"] == "recall":
        return _d(
            f"{_cap(one)} redaction recall (anonymize stage)",
            f"share of {many}",
            f"Share of ground-truth {many} at least 70 % covered by a redaction, on the written images.",
        )
    return _d(
        f"Ground-truth {one} boxes scored (anonymize stage)",
        "boxes",
        f"Ground-truth {many} on the written images that the anonymize stage scored.",
    )


def _redaction(m: re.Match[str]) -> Definition:
    one, many, _ = _category(m)
    field = m["field"]
    if field == "recall":
        return _d(
            f"{_cap(one)} redaction recall",
            f"share of {many}",
            f"Share of ground-truth {many} at least 70 % covered by a redaction, over all anonymized images.",
        )
    if field == "covered":
        return _d(
            f"Ground-truth {one} boxes redacted",
            "boxes",
            f"Ground-truth {many} at least 70 % covered by a redaction.",
        )
    return _d(
        f"Ground-truth {one} boxes quality-checked",
        "boxes",
        f"Ground-truth {many} in the quality-checked images.",
    )


def _overredaction(m: re.Match[str]) -> Definition:
    one, many, _ = _category(m)
    field = m["field"]
    if field == "rate":
        return _d(
            f"{_cap(many)} over-redacted",
            f"share of {many}",
            f"Share of {many} (not personal) covered >= 70 % by a redaction anyway: lost utility, not privacy.",
        )
    if field == "covered":
        return _d(
            f"{_cap(many)} redacted anyway",
            "boxes",
            f"{_cap(many)} (not personal) covered >= 70 % by a redaction.",
        )
    return _d(
        f"Ground-truth {one} boxes (over-redaction check)",
        "boxes",
        f"Ground-truth {many} the over-redaction check looked at.",
    )


_QUALITY_NAMES = {
    "psnr": ("PSNR", PSNR, "peak signal-to-noise ratio", "100 dB"),
    "ssim": ("SSIM", SSIM, "structural similarity", "1"),
    "msssim": ("MS-SSIM", MSSSIM, "multi-scale structural similarity", "1"),
}
_WHERE = {
    "whole": ("whole image", "over the whole image"),
    "outside": ("outside the sensitive boxes", "outside the face, plate and personal-text boxes only"),
}


def _quality(m: re.Match[str]) -> Definition:
    name, unit, words, same = _QUALITY_NAMES[m["metric"]]
    where, where_words = _WHERE[m["where"]]
    stat = "median" if m["median"] else "mean"
    label = f"{name}, {where}" + (" (median)" if m["median"] else "")
    hint = "lower = more changed" if m["where"] == "whole" else f"should stay at {same} (untouched)"
    return _d(
        label, unit, f"{_cap(stat)} over images of the {words} of anonymized vs raw, {where_words}; {hint}."
    )


_TEXT_FIELDS = ("readable_raw", "readable_anon", "preserved", "text_total")


def _text(m: re.Match[str]) -> Definition:
    one, strings = TEXTS[m["cat"]]
    field = m["field"]
    if field == "readable_raw":
        return _d(
            f"{one} readable on raw images",
            "share of strings",
            f"Share of ground-truth {strings} OCR reads on the raw images: calibration of the reader.",
        )
    if field == "readable_anon":
        return _d(
            f"{one} readable after anonymization",
            "share of strings",
            f"Share of ground-truth {strings} OCR still reads on the anonymized images.",
        )
    if field == "preserved":
        return _d(
            f"{one} preserved",
            "ratio (1 = all kept)",
            f"Ground-truth {strings} OCR reads after anonymization divided by those it reads before.",
        )
    return _d(f"{one}: strings in the OCR sample", "strings", f"Ground-truth {strings} in the OCR sample.")


# attacker → (label part, subject of the meaning, how it attacks)
_REID_ATTACKERS = {
    "naive": (
        "naive attacker",
        "anonymized faces",
        "matching dlib face embeddings to one clear photo per identity",
    ),
    "adaptive": (
        "adaptive attacker",
        "anonymized faces",
        "after obfuscating the clear photos the same way first (parrot attack)",
    ),
    "clear_naive": (
        "clear faces (calibration)",
        "clear raw faces",
        "by the naive attack (calibration: near 1)",
    ),
}
_LINKAGE_ATTACKERS = {
    "naive": ("naive attacker", "anonymized faces", "comparing dlib face embeddings with the raw faces"),
    "adaptive": (
        "adaptive attacker",
        "anonymized faces",
        "after obfuscating the raw faces the same way (parrot)",
    ),
    "clear": (
        "clear faces (calibration)",
        "lightly perturbed clear faces",
        "a calibration that should be near 1",
    ),
}


def _face_attack(
    m: re.Match[str],
    *,
    name: str,
    attackers: Mapping[str, tuple[str, str, str]],
    nearest: str,
    among: str,
    separates: str,
) -> Definition:
    """A re-identification or linkage attack's AUC / top-1 / top-5 for one attacker."""
    who, subject, how = attackers[m["attacker"]]
    field = m["field"]
    if field == "auc":
        return _d(
            f"{name} AUC, {who}",
            AUC,
            f"How well face distance {separates} for {subject}, {how}; 0.5 = a coin toss.",
        )
    if field == "top1":
        return _d(
            f"{name} top-1, {who}",
            "share of faces",
            f"Share of {subject} whose {nearest} is their own, {how}.",
        )
    return _d(f"{name} top-5, {who}", "share of faces", f"Share of {subject} whose own {among}, {how}.")


def _reid(m: re.Match[str]) -> Definition:
    return _face_attack(
        m,
        name="Re-identification",
        attackers=_REID_ATTACKERS,
        nearest="nearest identity",
        among="identity is among the 5 nearest",
        separates="separates same from different identity",
    )


def _linkage(m: re.Match[str]) -> Definition:
    return _face_attack(
        m,
        name="Linkage",
        attackers=_LINKAGE_ATTACKERS,
        nearest="nearest raw face (of the N in the sample)",
        among="raw face is among the 5 nearest of the N in the sample",
        separates="tells a face's own raw face from the others",
    )


# compare_methods columns (tasks/check_quality/compare.py MethodRow): column → (label, unit, meaning)
_COMPARE: dict[str, tuple[str, str, str]] = {
    "n_images": (
        "images compared",
        "images",
        "Raw test images every method is applied to (the same for each).",
    ),
    "psnr_whole": (
        "PSNR, whole image",
        PSNR,
        "Mean PSNR vs raw of the images with the method applied to their ground-truth sensitive boxes.",
    ),
    "psnr_outside": (
        "PSNR outside the boxes",
        PSNR,
        "Mean PSNR over pixels outside the padded sensitive boxes: should stay at 100 dB (untouched).",
    ),
    "ssim_whole": (
        "SSIM, whole image",
        SSIM,
        "Mean structural similarity of the method's output to the raw image.",
    ),
    "ssim_outside": (
        "SSIM outside the boxes",
        SSIM,
        "Mean structural similarity outside the padded sensitive boxes: should stay at 1.",
    ),
    "msssim_whole": (
        "MS-SSIM, whole image",
        MSSSIM,
        "Mean multi-scale structural similarity to the raw image.",
    ),
    "residual_face_rate": (
        "residual face rate",
        "share of faces",
        f"Share of ground-truth faces {AUDITOR} still finds after the method, on a sample.",
    ),
    "reid_naive_top1": (
        "re-identification top-1, naive",
        "share of faces",
        "Faces named from one clear photo per identity (no identities: linked back to their raw face).",
    ),
    "reid_naive_top5": (
        "re-identification top-5, naive",
        "share of faces",
        "Faces whose right name is among the naive attacker's 5 best guesses.",
    ),
    "reid_adaptive_top1": (
        "re-identification top-1, adaptive",
        "share of faces",
        "Faces named when the attacker first applies the method to its clear photos (parrot attack).",
    ),
    "reid_adaptive_top5": (
        "re-identification top-5, adaptive",
        "share of faces",
        "Faces whose right name is among the adaptive (parrot) attacker's 5 best guesses.",
    ),
    "reid_trained_accuracy": (
        "re-identification, trained attacker",
        "share of faces",
        "Faces a classifier trained on faces obfuscated by the method names (not run without identities).",
    ),
    "reid_chance": (
        "re-identification chance level",
        "share of faces",
        "Top-1 rate of a random guess (1 / identities, or 1 / faces for the linkage attack).",
    ),
    "reid_worst_rate": (
        "re-identification, strongest attacker",
        "share of faces",
        "The highest top-1 rate of the attackers run on this method.",
    ),
    "n_probes": (
        "faces attacked",
        "faces",
        "Faces the re-identification attacks tried to name for this method.",
    ),
    "utility_raw_accuracy": (
        "task accuracy on raw images",
        "share of images",
        "Accuracy of the task model (trained on raw images) on the compared raw images.",
    ),
    "utility_anon_accuracy": (
        "task accuracy after the method",
        "share of images",
        "The same model's accuracy on those images after the method.",
    ),
    "utility_ratio": (
        "utility ratio",
        "ratio (1 = no loss)",
        "Task accuracy after the method divided by the accuracy on the raw images.",
    ),
    "text_pii_readable": (
        "personal text readable",
        "share of strings",
        "Share of ground-truth personal strings OCR still reads after the method.",
    ),
    "text_nonpii_readable": (
        "non-personal text readable",
        "share of strings",
        "Share of ground-truth non-personal strings (signs) OCR still reads after the method.",
    ),
    "plate_readable": (
        "licence plates readable",
        "share of strings",
        "Share of ground-truth licence-plate strings OCR still reads after the method.",
    ),
    "changed_share": ("pixels changed", "share of pixels", "Share of all pixels the method changed."),
    "changed_outside": (
        "pixels changed outside the boxes",
        "share of pixels",
        "Share of pixels outside the padded sensitive boxes the method changed (0 = none).",
    ),
    "border_edge_energy": (
        "edge energy on redaction borders",
        "ratio (1 = no seam)",
        "Output gradient on a 2-px ring around each visible change over the raw image's (> 1: a seam).",
    ),
    "nested_regions": (
        "redactions with a seam inside",
        "regions",
        "Regions showing a hard straight edge inside them (a redaction within a redaction).",
    ),
    "flat_regions": (
        "solid redactions",
        "regions",
        "Regions filled with one flat colour, over the compared images.",
    ),
    "seam_regions": (
        "redactions with a visible outline",
        "regions",
        "Regions whose own border ring has 1.5 times the raw image's edge energy or more.",
    ),
    "body_preserved": (
        "people still detected",
        "share of detections",
        "Share of the body detector's people on the raw images found again after the method.",
    ),
}


def _compare(m: re.Match[str]) -> Definition:
    label, unit, meaning = _COMPARE[m["col"]]
    method = METHODS.get(m["method"], _cap(m["method"].replace("_", " ")))
    return _d(f"{method}: {label}", unit, meaning)


def _method_column(m: re.Match[str]) -> Definition:
    label, unit, meaning = _COMPARE[m["col"]]
    return _d(f"Per method: {label}", unit, meaning)


# membership-attack fields (tasks/audit/mia.py AttackResult.as_metrics, tasks/audit/epsilon.py)
_MIA_FIELDS = (
    "auc",
    "balanced_accuracy",
    "advantage",
    "tpr_at_0_1pct_fpr",
    "tpr_at_1pct_fpr",
    "n_members",
    "n_nonmembers",
    "empirical_epsilon_lower_bound",
)
_TPR = {"tpr_at_0_1pct_fpr": "0.1 %", "tpr_at_1pct_fpr": "1 %"}


def _mia_field(field: str, attack: str, which: str) -> Definition:
    name, how, target = ATTACKS.get(attack, attack), ATTACK_HOW.get(attack, attack), WHICH[which]
    if field == "auc":
        return _d(
            f"{name} AUC, {target}",
            AUC,
            f"How well this attack ({how}) tells training images from unseen ones; 0.5 = a coin toss.",
        )
    if field == "balanced_accuracy":
        return _d(
            f"{name} balanced accuracy, {target}",
            "share of guesses right (0.5 = chance)",
            "Best threshold's average of the rates of training and unseen images it labels correctly.",
        )
    if field == "advantage":
        return _d(
            f"{name} membership advantage, {target}",
            "TPR − FPR (0 = chance)",
            "Best threshold's share of training images flagged minus share of unseen images flagged "
            "(Yeom et al. 2018).",
        )
    if field == "n_members":
        return _d(
            f"{name}: members attacked, {target}", "images", "Training images (members) the attack scored."
        )
    if field == "n_nonmembers":
        return _d(
            f"{name}: non-members attacked, {target}",
            "images",
            "Holdout images (never trained on) the attack scored.",
        )
    if field == "empirical_epsilon_lower_bound":
        return _d(
            f"{name} ε lower bound, {target}",
            EPS,
            "ε this attack's success proves (exact binomial confidence bounds; threshold picked on half the "
            "images, bound measured on the other half).",
        )
    rate = _TPR[field.removesuffix("_supported").removesuffix("_ci_low").removesuffix("_ci_high")]
    tpr = f"TPR at {rate} FPR"
    if field.endswith("_supported"):
        return _d(
            f"{name} {tpr} supported, {target}",
            "1 = supported, 0 = coarse",
            f"1 when enough unseen images exist for 10 false positives at {rate}; else the TPR is measured at "
            "almost no false positive.",
        )
    if field.endswith(("_ci_low", "_ci_high")):
        end = "low" if field.endswith("_ci_low") else "high"
        return _d(
            f"{name} {tpr}, 95 % interval {end}, {target}",
            "share of members",
            f"{_cap(end)} end of the 95 % confidence interval of that TPR (exact binomial, over the members).",
        )
    return _d(
        f"{name} {tpr}, {target}",
        "share of members",
        f"Share of training images the attack flags while wrongly flagging at most {rate} of unseen ones: "
        "confident hits (Carlini 2022).",
    )


def _mia(m: re.Match[str]) -> Definition:
    return _mia_field(m["field"], m["attack"], m["which"])


def _mia_class(m: re.Match[str]) -> Definition:
    name, target = ATTACKS.get(m["attack"], m["attack"]), WHICH[m["which"]]
    return _d(
        f"{name} AUC on class {m['c']}, {target}",
        AUC,
        f"The attack's AUC on images of task class {m['c']} only: a class that leaks more than the others "
        "shows here.",
    )


def _per_target(m: re.Match[str]) -> Definition:
    which, field = m["which"], m["field"]
    target = WHICH[which]
    if field == "shadow_models":
        return _d(
            f"Shadow models, {target}",
            "models",
            "Models trained exactly like the target on random subsets of the audited images, for the shadow "
            "and LiRA attacks.",
        )
    if field in ("shadow_n_train_min", "shadow_n_train_max"):
        size = "Smallest" if field.endswith("min") else "Largest"
        return _d(
            f"{size} shadow training set, {target}",
            "images",
            "Images a shadow model trained on; equal to the target's training-set size by design.",
        )
    if field == "target_n_train":
        return _d(
            f"Members in the audit pool, {target}",
            "images",
            "Training images (members) among the audited images; non-members come from the holdout split.",
        )
    if field == "exploratory_epsilon_lower_bound":
        return _d(
            f"Exploratory ε lower bound, {target}",
            EPS,
            "Largest ε bound of any single attack, each at 95 % on its own: not a joint guarantee, for "
            "comparison only.",
        )
    if which == "dp":
        return _d(
            "Empirical ε lower bound, DP model",
            EPS,
            "ε the attacks prove the DP model leaks at least (larger of LiRA online and the canary audit, 95 % "
            "jointly); must stay below the claimed ε.",
        )
    return _d(
        "Empirical ε lower bound, non-private baseline",
        EPS,
        "ε the pre-registered membership test (LiRA online) proves the baseline leaks at least: shows the "
        "attack can find leaks.",
    )


_PERSON_FIELDS = ("auc_ci_low", "auc_ci_high", "n_member_persons", "n_nonmember_persons", "n_models")


def _person_mia(m: re.Match[str]) -> Definition:
    """Person-level LiRA (tasks/audit/person.py): the image-level field's words, said of persons."""
    name, target, field = ATTACKS.get(m["attack"], m["attack"]), WHICH[m["which"]], m["field"]
    if field in ("auc_ci_low", "auc_ci_high"):
        end = "low" if field.endswith("low") else "high"
        return _d(
            f"{name} per person AUC, 95 % interval {end}, {target}",
            AUC,
            f"{_cap(end)} end of the AUC's 95 % bootstrap interval, resampling persons with all their trials.",
        )
    if field in ("n_member_persons", "n_nonmember_persons"):
        side = "IN" if field == "n_member_persons" else "OUT"
        return _d(
            f"{name} per person: persons {side}, {target}",
            "persons",
            f"Distinct persons scored while {side} of a held-out model trained like the target.",
        )
    if field == "n_models":
        return _d(
            f"{name} per person: held-out models, {target}",
            "models",
            "Person-disjoint shadow models, each attacked in turn with the others as its references.",
        )
    if field in ("n_members", "n_nonmembers"):
        side = "IN" if field == "n_members" else "OUT"
        return _d(
            f"{name} per person: {side} trials, {target}",
            "person trials",
            f"(person, held-out model) pairs scored with the person {side} of that model.",
        )
    base = _mia_field(field, m["attack"], m["which"])
    meaning = (
        "Per person (a person's images' scores summed; person-disjoint shadows, each held out in turn; "
        "intervals: bootstrap over persons)."
    )
    return _d(f"{base.label.replace(name, f'{name} per person', 1)}", base.unit, meaning)


_PERSON_CANARY = {
    "n_canaries": (
        "Canary persons",
        "persons",
        "Synthetic persons of several images each, each inserted whole or "
        "left out by a coin flip (one extra DP run).",
    ),
    "n_guesses": (
        "Canary person guesses",
        "guesses",
        "Persons the auditor guessed IN (highest summed scores) or OUT (lowest).",
    ),
    "n_correct": ("Canary person guesses right", "guesses", "Guesses that matched the coin flip."),
    "epsilon_lower_bound": (
        "Canary ε lower bound per person",
        EPS,
        "ε per person the canary persons prove "
        "(Steinke et al. 2023 over persons, exploratory); must stay below the per-person ε.",
    ),
    "beta": ("Canary person audit error level β", "probability (1 − confidence)", "The bound's level."),
    "ceiling": (
        "Canary person audit ceiling",
        EPS,
        "The largest per-person ε this design can certify: every guess right.",
    ),
    "ceiling_ratio": (
        "Canary person ceiling ÷ per-person ε",
        "× the per-person ε",
        "Below 1 the audit could not catch a broken per-person guarantee.",
    ),
    "images_per_person": (
        "Images per canary person",
        "images",
        "Each canary person's images: the run's cap.",
    ),
}


def _person_canary(m: re.Match[str]) -> Definition:
    return _d(*_PERSON_CANARY[m["field"]])


def _person_target(m: re.Match[str]) -> Definition:
    target, field = WHICH[m["which"]], m["field"]
    if field == "n_persons":
        return _d(
            f"Persons in the audit pool, {target}",
            "persons",
            "Distinct persons (train.dp.unit's units) among the audited images, whose membership is attacked.",
        )
    size = "Smallest" if field.endswith("min") else "Largest"
    return _d(
        f"{size} person-disjoint shadow training set, {target}",
        "images",
        "Images a person-disjoint shadow trained on: an image trains it only when all its persons are IN.",
    )


_MI_FIELDS = {
    "ssim_max": (
        "best SSIM to its class",
        SSIM,
        "MI-Face rebuilds a typical input per class from the model; its best similarity to a training image "
        "of that class (mean over classes).",
    ),
    "ssim_mean": (
        "mean SSIM to its class",
        SSIM,
        "Mean similarity of each class's rebuilt input to the training images of that class.",
    ),
    "ssim_max_other": (
        "best SSIM to other classes",
        SSIM,
        "Control: best similarity of a rebuilt input to other classes' images; a real leak shows as "
        "own-class similarity above this.",
    ),
    "confidence": (
        "model confidence",
        "probability",
        "Mean probability the model gives the intended class for each rebuilt input.",
    ),
}


def _model_inversion(m: re.Match[str]) -> Definition:
    label, unit, meaning = _MI_FIELDS[m["field"]]
    return _d(f"Model inversion: {label}, {WHICH[m['which']]}", unit, meaning)


def _gi_target(m: re.Match[str]) -> Definition:
    what = "PSNR" if m["field"] == "psnr" else "SSIM"
    unit = "dB (higher = closer)" if m["field"] == "psnr" else SSIM
    if m["which"] == "dp":
        return _d(
            f"Gradient inversion {what} under DP noise",
            unit,
            f"Best {what} of images rebuilt from one client gradient (DLG, iDLG, Inverting Gradients) with "
            "DP noise at the training σ.",
        )
    return _d(
        f"Gradient inversion {what}, no defence",
        unit,
        f"Best {what} of images rebuilt from one client gradient with no defence: what an attacker gets "
        "without DP.",
    )


def _gi_defence(defence: str) -> str:
    if defence == "none":
        return "no defence"
    if defence == "dp_train_sigma":
        return "DP noise at the training σ"
    if defence.startswith("dp_sigma_"):
        return f"DP noise σ = {defence.removeprefix('dp_sigma_')}"
    if defence.startswith("prune_"):
        return f"{defence.removeprefix('prune_')} % of the gradient pruned"
    return f"{defence} gradients"


def _gi_table(m: re.Match[str]) -> Definition:
    model = "pixel-linear model" if m["model"] == "pixel_linear" else f"{m['model']} model"
    defence, field = _gi_defence(m["defence"]), m["field"]
    if field == "accuracy":
        return _d(
            f"Federated accuracy, {model}, {defence}",
            "share of holdout images",
            "Holdout accuracy after federated training under this defence: what the defence costs in utility.",
        )
    what, unit = ("PSNR", "dB (higher = closer)") if field == "psnr_max" else ("SSIM", SSIM)
    return _d(
        f"Gradient inversion {what}, {model}, {defence}",
        unit,
        f"Best {what} over attack methods and batch sizes of images rebuilt from one client gradient under "
        "this defence.",
    )


# compliance.json "attacks": attack → target → membership-inference field → audit's metric field (one map: the
# compliance builder's `ATTACK_FIELDS` extends it with the inversion fields)
MIA_JSON_FIELDS = {
    "auc": "auc",
    "tpr_at_0.1pct_fpr": "tpr_at_0_1pct_fpr",
    "tpr_at_1pct_fpr": "tpr_at_1pct_fpr",
    "balanced_accuracy": "balanced_accuracy",
    "advantage": "advantage",
    "tpr_at_0.1pct_fpr_supported": "tpr_at_0_1pct_fpr_supported",
    "tpr_at_0.1pct_fpr_ci_high": "tpr_at_0_1pct_fpr_ci_high",
    "tpr_at_1pct_fpr_supported": "tpr_at_1pct_fpr_supported",
    "tpr_at_1pct_fpr_ci_high": "tpr_at_1pct_fpr_ci_high",
}


def _json_attack(m: re.Match[str]) -> Definition:
    return _mia_field(MIA_JSON_FIELDS[m["field"]], m["attack"], m["which"])


def _json_inversion(m: re.Match[str]) -> Definition:
    if m["attack"] == "model_inversion":
        return _model_inversion(m)
    return _gi_target(m)


def _alt(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


_CAT = _alt(CATEGORIES)
_ATTACK = _alt(ATTACKS)
_WHICH = _alt(WHICH)
_TPR_FIELDS = _alt(f"{t}{s}" for t in _TPR for s in ("_supported", "_ci_low", "_ci_high"))

FAMILIES: tuple[tuple[re.Pattern[str], Builder], ...] = tuple(
    (re.compile(p), b)
    for p, b in (
        (rf"ingest/gt_(?P<cat>{_CAT})", _ingest_gt),
        (rf"anonymize/detections_(?P<cat>{_CAT})", _detections),
        (r"anonymize/gt_(?P<cat>face|plate|text_pii)_(?P<field>recall)", _anon_gt),
        (r"anonymize/gt_(?P<cat>face|plate|text_pii|text_nonpii)_(?P<field>boxes)", _anon_gt),
        (r"check_quality/(?P<cat>face|plate|text_pii)_redaction_(?P<field>recall|covered|total)", _redaction),
        (
            r"check_quality/(?P<cat>text_nonpii|placard)_overredaction_(?P<field>rate|covered|total)",
            _overredaction,
        ),
        (
            r"check_quality/(?P<metric>psnr|ssim|msssim)_(?P<where>whole|outside)(?P<median>_median)?",
            _quality,
        ),
        (rf"check_quality/(?P<cat>text_pii|plate|text_nonpii)_(?P<field>{_alt(_TEXT_FIELDS)})", _text),
        (rf"check_quality/reid_(?P<attacker>{_alt(_REID_ATTACKERS)})_(?P<field>top1|top5|auc)", _reid),
        (
            rf"check_quality/linkage_(?P<attacker>{_alt(_LINKAGE_ATTACKERS)})_(?P<field>top1|top5|auc)",
            _linkage,
        ),
        (rf"check_quality/compare_(?P<method>[a-z0-9_]+?)_(?P<col>{_alt(_COMPARE)})", _compare),
        (rf"method_comparison/(?P<col>{_alt(_COMPARE)})", _method_column),
        (
            rf"audit/(?P<which>{_WHICH})/(?P<attack>{_ATTACK})/(?P<field>{_TPR_FIELDS}|{_alt(_MIA_FIELDS)})",
            _mia,
        ),
        (rf"audit/(?P<which>{_WHICH})/(?P<attack>{_ATTACK})/class_(?P<c>\d+)/auc", _mia_class),
        (
            rf"audit/(?P<which>{_WHICH})/person/(?P<attack>{_ATTACK})/(?P<field>{_TPR_FIELDS}|{_alt(_MIA_FIELDS)}"
            rf"|{_alt(_PERSON_FIELDS)})",
            _person_mia,
        ),
        (
            rf"audit/(?P<which>{_WHICH})/person/(?P<field>n_persons|shadow_n_train_min|shadow_n_train_max)",
            _person_target,
        ),
        (rf"audit/dp/person/canary/(?P<field>{_alt(_PERSON_CANARY)})", _person_canary),
        (
            rf"audit/(?P<which>{_WHICH})/(?P<field>shadow_models|shadow_n_train_min|shadow_n_train_max|target_n_train"
            r"|empirical_epsilon_lower_bound|exploratory_epsilon_lower_bound)",
            _per_target,
        ),
        (rf"audit/(?P<which>{_WHICH})/model_inversion/(?P<field>{_alt(_MI_FIELDS)})", _model_inversion),
        (rf"audit/(?P<which>{_WHICH})/gradient_inversion/(?P<field>psnr|ssim)", _gi_target),
        (
            r"audit/gradient_inversion/(?P<model>[^/]+)/(?P<defence>[^/]+)/(?P<field>psnr_max|ssim_max|accuracy)",
            _gi_table,
        ),
        (
            rf"attacks/(?P<attack>{_ATTACK})/(?P<which>{_WHICH})/(?P<field>{_alt(MIA_JSON_FIELDS)})",
            _json_attack,
        ),
        (
            rf"attacks/(?P<attack>model_inversion)/(?P<which>{_WHICH})/(?P<field>{_alt(_MI_FIELDS)})",
            _json_inversion,
        ),
        (
            rf"attacks/(?P<attack>gradient_inversion)/(?P<which>{_WHICH})/(?P<field>psnr|ssim)",
            _json_inversion,
        ),
    )
)


def _family(key: str) -> Definition | None:
    for pattern, build in FAMILIES:
        match = pattern.fullmatch(key)
        if match:
            return build(match)
    return None


def _aliased(table: Mapping[str, Definition]) -> dict[str, Definition]:
    out = {}
    for alias, target in ALIASES.items():
        found = table.get(target) or _family(target)
        if found is None:  # pragma: no cover - a typo in the table above
            raise KeyError(f"alias {alias!r}: {target!r} has no definition")
        out[alias] = found
    return out


# every exact key (aliases share their target's Definition object)
DEFINITIONS: dict[str, Definition] = _CANONICAL | _aliased(_CANONICAL)

# ------------------------------------------------------------------------------------------ look-up


def define(key: str) -> Definition | None:
    """The definition of a metric key: exact (DEFINITIONS) first, then its family, then under its renamed prefix.

    Args:
        key: a stage metric key ("check_quality/psnr_whole"), a gate's flat key ("attacks/dp/lira/auc") or a
            compliance.json path joined by "/" ("quality/psnr_whole", "attacks/lira/dp/tpr_at_0.1pct_fpr").
    Returns:
        Its Definition, or None when the key is unknown.
    """
    if key in DEFINITIONS:
        return DEFINITIONS[key]
    found = _family(key)
    if found is not None:
        return found
    for old, new in RENAMES:
        if key.startswith(old):
            return define(new + key.removeprefix(old))
    return None


def label(key: str) -> str:
    """The human label of `key`, or the key itself when it has no definition (see `undefined`)."""
    found = define(key)
    return key if found is None else found.label


def undefined(keys: Iterable[str]) -> list[str]:
    """The keys among `keys` that have no definition, sorted, each once."""
    return sorted({k for k in keys if define(k) is None})
