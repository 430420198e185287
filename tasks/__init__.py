"""privtrail pure logic: one module or package per stage. No prefect, mlflow, dvc or file I/O here."""
