"""The `audit` stage: attack the trained models the way an adversary would (membership inference)."""
