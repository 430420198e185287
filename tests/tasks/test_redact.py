"""Credentials never leave their config: URIs and remotes are recorded with them masked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.redact import redact_text, redact_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://user:pass@host/db", "postgresql://user:***@host/db"),
        ("postgresql+psycopg2://mlflow:p@ss:w0rd@db.internal:5432/mlflow?sslmode=require",
         "postgresql+psycopg2://mlflow:***@db.internal:5432/mlflow?sslmode=require"),
        ("https://ghp_abcdef123456@github.com/acme/privtrail.git", "https://***@github.com/acme/privtrail.git"),
        ("https://oauth2:glpat-xyz@gitlab.com/acme/privtrail.git", "https://oauth2:***@gitlab.com/acme/privtrail.git"),
        ("https://mlflow.example/api?token=abc123&x=1", "https://mlflow.example/api?token=***&x=1"),
        ("https://h/p?access_token=abc&AWSAccessKeyId=K&X-Amz-Signature=s",
         "https://h/p?access_token=***&AWSAccessKeyId=***&X-Amz-Signature=***"),
        ("databricks://profile", "databricks://profile"),
        ("sqlite:////abs/path/mlflow.db", "sqlite:////abs/path/mlflow.db"),
        ("ssh://git@github.com/acme/privtrail.git", "ssh://git@github.com/acme/privtrail.git"),
        ("git@github.com:acme/privtrail.git", "git@github.com:acme/privtrail.git"),
        ("/work/main", "/work/main"),
        ("http://mlflow:5000", "http://mlflow:5000"),
    ],
)
def test_redact_uri(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


def test_redact_text_masks_every_uri_in_a_command() -> None:
    cmd = "git clone https://TOKEN123@github.com/o/r.git privtrail && cd privtrail && git checkout abc"
    assert redact_text(cmd) == "git clone https://***@github.com/o/r.git privtrail && cd privtrail && git checkout abc"
    assert redact_text("runs:/abc/compliance/compliance.html") == "runs:/abc/compliance/compliance.html"


@given(secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~!$", min_size=8))
def test_no_password_survives(secret: str) -> None:
    secret = f"Zq9{secret}"  # a prefix no URI part below contains
    for uri in (f"postgresql://u:{secret}@h/db", f"https://{secret}@github.com/o/r.git",
                f"https://h/x?token={secret}", f"mysql://u:{secret}@h:3306/db?x=1"):
        assert secret not in redact_uri(uri), uri


@pytest.mark.parametrize("uri", ["postgresql://u:ab/cd@h/db", "postgresql://u:a?b#c@h:5432/db",
                                 "mysql://root:x/y?z@db.internal/privtrail"])
def test_a_password_holding_slash_question_mark_or_hash_is_masked(uri: str) -> None:
    secret = uri.split("://", 1)[1].split(":", 1)[1].rsplit("@", 1)[0]
    out = redact_uri(uri)
    assert secret not in out and ":***@" in out and out.endswith(uri.rsplit("@", 1)[1].split("?")[0].split("/")[-1])


def test_a_path_with_an_at_sign_is_not_userinfo() -> None:
    """No "user:" before the "@": a path, left alone. ("http://h:80/a@b" is ambiguous with an unencoded
    password "80/a" and is masked: over-masking is the safe side.)"""
    assert redact_uri("http://h/a@b") == "http://h/a@b"


def test_a_password_with_at_signs_and_slashes_is_masked_whole() -> None:
    assert redact_uri("postgresql://u:p@ss/w0rd@h/db") == "postgresql://u:***@h/db"
    assert redact_uri("postgresql://u:a@b?c#d@db.internal:5432/x") == "postgresql://u:***@db.internal:5432/x"
