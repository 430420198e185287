"""anonymize stage: find faces, plates and personal text; obfuscate them; verify; fail closed."""
