#!/usr/bin/env python3
"""Verify a ledger evidence chain without ledger: Python, securesystemslib, hashlib.

An auditor's independent check of one commit's evidence, from a copy of the store
(a folder, e.g. `aws s3 sync s3://bucket/prefix ./evidence`), the policy file and
nothing else. It checks what `ledger verify` checks, written from the published
formats (docs/evidence-format.md) rather than from ledger's code:

  * every envelope is DSSE with payloadType application/vnd.in-toto+json, signed by
    at least `min_signatures` distinct keys the policy trusts for that stage and that
    were not revoked before the evidence's time;
  * the payload is an in-toto Statement v1 whose subject is the commit and whose
    predicateType is the one of the folder it is stored in;
  * the predicate's sha, stage and attempt match where it is stored;
  * every `inputs` hash link is the SHA-256 of the stored envelope it names;
  * a captured output log hashes to what was signed;
  * the policy that gated the stage is stored under policies/ and hashes to its name.

Usage: python3 verify_chain.py STORE_DIR POLICY_JSON SHA
Exit 0 when every artifact verifies, 1 when any does not (each problem printed).
Needs: pip install 'securesystemslib[crypto]'
"""

import datetime
import hashlib
import json
import os
import re
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT = "https://in-toto.io/Statement/v1"
# folder -> (stage, predicate type); see docs/evidence-format.md.
LAYOUT = {
    "commit": ("commit", "https://ledger.dev/predicate/commit/v1"),
    "integration": ("integration", "https://ledger.dev/predicate/integration/v1"),
    "build": ("build", "https://ledger.dev/predicate/build/v1"),
    "release-candidate": ("publish", "https://ledger.dev/predicate/manifest/v1"),
    "infra": ("deploy", "https://ledger.dev/predicate/deployment/v1"),
    "deploy": ("smoke", "https://ledger.dev/predicate/smoke/v1"),
    "release": ("decide", "https://ledger.dev/predicate/decision/v1"),
    "pipeline": ("decide", "https://ledger.dev/predicate/timing/v1"),
}
ATTEMPT = re.compile(r"^[a-z-]+(?:\.attempt-(\d+))?\.json$")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def when(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def trusted_keys(policy, stage):
    """Keys the policy trusts for `stage`, with the time each was revoked (or None)."""
    keys = []
    for k in policy["keys"]:
        if stage not in k["stages"]:
            continue
        key = SSlibKey.from_crypto(load_pem_public_key(k["public_key"].encode()))
        if key.keyid != k["keyid"]:
            raise SystemExit(f"policy key {k['keyid']} does not match its public key")
        revoked = k.get("revoked_at")
        keys.append((key, when(revoked) if revoked else None))
    return keys


def derived_result(stage, predicate):
    """The result a predicate's own fields imply (None where they imply none): a
    wrapped command passes only with exit code 0, a smoke only when it ran checks and
    all were ok, a build or deploy only without a recorded failure."""
    if stage in ("commit", "integration"):
        return "pass" if predicate.get("command", {}).get("exit_code") == 0 else "fail"
    if stage == "smoke":
        checks = predicate.get("checks", [])
        return "pass" if checks and all(c.get("ok") is True for c in checks) else "fail"
    if stage in ("build", "deploy"):
        return "fail" if "failure" in predicate else "pass"
    return None


def check(store, policy, sha, folder, name):
    problems = []
    stage, predicate_type = LAYOUT[folder]
    path = os.path.join(store, folder, sha, name)
    with open(path, "rb") as f:
        raw = json.load(f)
    if set(raw) != {"payload", "payloadType", "signatures"}:
        return [f"not a DSSE envelope (fields {sorted(raw)})"]
    envelope = Envelope.from_dict(raw)
    if envelope.payload_type != PAYLOAD_TYPE:
        return [f"payloadType is {envelope.payload_type!r}"]
    # Signatures first: nothing of the payload is read before it is authenticated.
    need = policy.get("stages", {}).get(stage, {}).get("min_signatures", 1)
    keys = trusted_keys(policy, stage)
    try:
        accepted = envelope.verify([k for k, _ in keys], need)
    except Exception as e:  # securesystemslib's VerificationError and bad signatures
        return [f"signatures: {e}"]
    try:
        statement = json.loads(envelope.payload)
        predicate = statement["predicate"]
        finished = when(predicate["finished_at"])
    except Exception as e:
        return [f"payload is not a readable in-toto statement: {e}"]
    # A key revoked before the evidence's time does not count toward the threshold.
    revoked = {k.keyid: at for k, at in keys}
    valid = [kid for kid in accepted if revoked[kid] is None or revoked[kid] > finished]
    if len(valid) < need:
        problems.append(f"{len(valid)} signature(s) by keys not revoked at its time, {need} needed")
    if statement.get("_type") != STATEMENT:
        problems.append(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != predicate_type:
        problems.append(f"predicateType {statement.get('predicateType')!r} in {folder}/")
    # Images are subjects too (by digest); every gitCommit subject must be this one.
    commits = {s.get("digest", {}).get("gitCommit") for s in statement.get("subject", [])}
    commits.discard(None)
    if commits != {sha}:
        problems.append(f"subjects name commits {sorted(commits)}, not just {sha}")
    attempt = int(ATTEMPT.match(name).group(1) or 1)
    expected = {"sha": sha, "stage": stage, "attempt": attempt}
    for field, value in expected.items():
        if predicate.get(field) != value:
            problems.append(f"predicate {field} is {predicate.get(field)!r}, stored as {value!r}")
    for link in predicate.get("inputs", []):
        target = os.path.join(store, link["key"])
        if not os.path.isfile(target):
            problems.append(f"input {link['key']} is missing")
        elif sha256_file(target) != link["sha256"]:
            problems.append(f"hash link broken: {link['key']}")
    output = predicate.get("output")
    if output:
        log = os.path.join(store, output["key"])
        if not os.path.isfile(log) or sha256_file(log) != output["sha256"]:
            problems.append(f"captured output {output['key']} missing or altered")
    derived = derived_result(stage, predicate)
    if derived is not None and predicate.get("result") != derived:
        problems.append(f"result is {predicate.get('result')!r}, but its own fields make it {derived!r}")
    gated_by = os.path.join(store, "policies", predicate["policy_sha256"] + ".json")
    if not os.path.isfile(gated_by) or sha256_file(gated_by) != predicate["policy_sha256"]:
        problems.append(f"policy {predicate['policy_sha256'][:12]} missing or altered")
    return problems


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    store, policy_path, sha = argv[1:]
    with open(policy_path) as f:
        policy = json.load(f)
    failed = checked = 0
    for folder in LAYOUT:
        directory = os.path.join(store, folder, sha)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name.endswith(".log"):
                continue
            key = f"{folder}/{sha}/{name}"
            if not ATTEMPT.match(name):
                print(f"FAIL  {key}: not ledger evidence")
                failed += 1
                continue
            checked += 1
            try:
                problems = check(store, policy, sha, folder, name)
            except Exception as e:  # fail closed on anything unexpected
                problems = [f"unreadable: {e!r}"]
            print(("ok    " if not problems else "FAIL  ") + key)
            for p in problems:
                print(f"      {p}")
            failed += bool(problems)
    if checked == 0:
        print(f"no evidence for {sha} in {store}")
        sys.exit(1)
    print(f"{checked - failed} of {checked} artifact(s) verified")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv)
