"""The `ingest` stage's pure logic: the built-in dataset, the folder source, splits and the manifest."""
