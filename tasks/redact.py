"""Credentials removed from URIs before they are recorded (reports, run records, registry tags, logs).

A tracking URI (`postgresql://user:pass@db/mlflow`, `https://user:token@mlflow.example`) or a git remote
(`https://ghp_TOKEN@github.com/org/repo.git`, `https://oauth2:TOKEN@gitlab.com/...`) may carry a secret.
Credentials stay in their own configuration (the environment, git's config); what privtrail writes down is
where the store or the code lives, never how to log in to it: `scheme://user:***@host/...`, a bare
user-info on http(s) (a token used as user name) becomes `***@`, and query parameters that carry a
secret (`?token=`, `access_token=`, `X-Amz-Signature=`, `sig=`, ...) become `=***`.

Pure: string in, string out.
"""

from __future__ import annotations

import re

MASK = "***"
# query/fragment parameter names that carry a secret (matched case-insensitively, anywhere in the name)
_SECRET_PARAM = re.compile(r"token|passw|pwd|secret|key|sig|credential|auth|session|code", re.IGNORECASE)
# http(s) user-info without a password is a token more often than a user name (GitHub, GitLab, Bitbucket)
_TOKEN_AS_USER_SCHEMES = frozenset({"http", "https", "git+https", "git+http"})
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_PARAM = re.compile(r"([?&#;])([^=&#;]*)=([^&#;]*)")


def redact_uri(uri: str) -> str:
    """`uri` with its password, token-as-user-name and secret query parameters replaced by `***`.

    Args:
        uri: any URI or path (`sqlite:///abs/path`, `/some/dir`, `git@host:org/repo` are returned unchanged).
    Returns:
        The same URI, credentials masked: `postgresql://user:***@host/db`, `https://***@github.com/o/r.git`,
        `https://host/x?token=***`.
    """
    match = _SCHEME.match(uri)
    if match is None:
        return uri
    scheme, rest = match.group(1), uri[match.end() :]
    # user-info first: a password may hold an unencoded "/", "?", "#" or "@"; with a "user:" prefix and such a
    # character before the last "@", everything up to that last "@" is masked (over-masking is the safe side)
    last = rest.rfind("@")
    if last > 0 and re.match(r"[^/?#@]*:", rest) and re.search(r"[/?#]", rest[:last]):
        masked = _redact_authority(rest[: last + 1] + "h", scheme=scheme.lower())[:-1]
        after = rest[last + 1 :]
        cut = min(
            (i for i in (after.find("/"), after.find("?"), after.find("#")) if i >= 0), default=len(after)
        )
        return f"{scheme}://{masked}{after[:cut]}{_redact_params(after[cut:])}"
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    return f"{scheme}://{_redact_authority(authority, scheme=scheme.lower())}{_redact_params(tail)}"


def _redact_authority(authority: str, *, scheme: str) -> str:
    """`user:***@host` / `***@host`; the user-info ends at the last `@` (a password may contain `@`)."""
    if "@" not in authority:
        return authority
    userinfo, host = authority.rsplit("@", 1)
    if ":" in userinfo:
        return f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    return f"{MASK}@{host}" if scheme in _TOKEN_AS_USER_SCHEMES else authority


def _redact_params(tail: str) -> str:
    def mask(m: re.Match[str]) -> str:
        sep, name, value = m.groups()
        return f"{sep}{name}={MASK}" if value and _SECRET_PARAM.search(name) else m.group(0)

    return _PARAM.sub(mask, tail)


def redact_text(text: str) -> str:
    """`text` (a command line, a sentence) with every URI in it passed through `redact_uri`."""
    return _URI.sub(lambda m: redact_uri(m.group(0)), text)
