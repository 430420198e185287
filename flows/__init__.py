"""privtrail orchestration: one Prefect flow per DVC stage. File I/O, params and MLflow live here."""

import os

# No telemetry from any tool we drive (the machines have no internet anyway).
for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "TQDM_DISABLE": "1",  # GX progress bars flood stage logs
    # the ephemeral API server needs ~7-15 s to start (DB migrations), more on a loaded 2-core machine
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
}.items():
    os.environ.setdefault(_key, _value)
