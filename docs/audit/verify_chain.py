#!/usr/bin/env python3
"""Verify a ledger evidence chain without ledger: Python, securesystemslib, hashlib.

An auditor's independent check of one commit's evidence, from a copy of the store
(a folder, e.g. `aws s3 sync s3://bucket/prefix ./evidence`), the policy file, the
policy's signature and root of trust, and nothing else. It checks what `ledger verify`
checks, written from the published formats (docs/evidence-format.md, docs/policy.md)
rather than from ledger's code.

First, that the policy is one its owners signed (nothing is verified otherwise):

  * the root of trust: the store's trust/root/1.json, 2.json, ... (contiguous from 1)
    are DSSE envelopes (payloadType application/vnd.ledger.policy-root+json) around a
    root document naming the owners' Ed25519 keys and a threshold. Version 1 is signed
    by a threshold of its own owners; every later version by a threshold of the
    previous version's owners AND of its own. When the store has no root yet, the
    checkout's root file is version 1; when that file is the store's next version, it
    extends the chain (as the next stage would pin it);
  * with --owners (or $LEDGER_POLICY_OWNERS, as ledger reads it), the current root's
    owners are exactly those key ids;
  * the policy signature (payloadType application/vnd.ledger.policy+json) carries the
    policy file's exact bytes and a threshold of the CURRENT owners signed it;
  * every stored policy signature, trust/policy/<sha256>.json, was signed by a
    threshold of the owners of some root version and is named after the SHA-256 of
    the policy it carries: those policies, and the current one, are the signed history.

Any of these failing is tampering with the trust objects (or an unsigned policy), and
the verdict is a refusal.

Then, for every envelope of the commit:

  * it is DSSE with payloadType application/vnd.in-toto+json, signed by at least
    `min_signatures` distinct keys the policy trusts for that stage and that were not
    revoked before the evidence's time;
  * the payload is an in-toto Statement v1 whose subject is the commit and whose
    predicateType is the one of the folder it is stored in;
  * the predicate's sha, stage, attempt and (deploy, smoke) environment match where
    it is stored;
  * every `inputs` hash link is the SHA-256 of the stored envelope it names;
  * a captured output log hashes to what was signed;
  * a build or decision whose predicate has `attestation` links its SLSA companion,
    the standard statement stored beside it (build/<sha>/build[.attempt-<n>]
    .provenance.json: SLSA Provenance v1; release/<sha>/decision[.attempt-<n>]
    .vsa.json: SLSA VSA v1): the link names exactly that key, the stored envelope
    hashes to it, is read as strictly as any envelope (payloadType in-toto) and is
    signed by a threshold of keys the policy trusts for the SAME stage, not revoked
    before the artifact's time; its statement is an in-toto Statement v1 of the
    companion's predicate type; a provenance's subjects are the build's images in
    build order (a pushed image by repository and manifest digest, else its tag's
    repository and image id) and its first resolved dependency is the commit; a VSA
    says PASSED exactly when the decision promotes, names the policy that gated the
    decision and a resource URI ending in @<sha>. An artifact without `attestation`
    (older evidence, a failed build, a decision with no images) needs no companion;
  * the policy that gated the stage is stored under policies/, hashes to its name, and
    is in the signed history: evidence gated by a policy the owners never signed
    counts for nothing.

And that no evidence was removed, replaced or slipped in, from the store's
append-only log (docs/evidence-format.md, "The log"):

  * the log reads: log/0000000000000001.json, 2, ... without a gap, each entry strict
    JSON {seq, prev, objects} whose seq is its number and whose prev is the SHA-256
    of the previous entry's exact bytes (null for entry 1), naming no key twice with
    different digests; nothing else under log/. A store with evidence and no log
    entry fails: deleted evidence could not be told from evidence never written;
  * every object under the commit's prefixes (captured .log files and SLSA
    companions included) is named by the log with its SHA-256: one it does not name
    no writer logged, one with another digest was replaced; a companion whose
    artifact is not stored is not ledger evidence;
  * every object the log names under those prefixes is stored (else it was deleted
    or renamed), and is verified as above if it is evidence;
  * each stage's attempts (per environment for deploy and smoke), stored or logged,
    are numbered 1, 2, ... without a hole;
  * evidence that recorded the log's head its gate read (`log_head`: size and the
    SHA-256 of that entry) finds that entry unchanged, and is itself named by a
    later entry: a log deleted and started again, or rewritten under it, is caught;
  * every checkpoint under checkpoints/ (a C2SP signed note of the log's size and
    the SHA-256 of its last entry) is signed by a key the policy trusts for any
    stage, is named after its size and signer, and the log extends it: the entry at
    its size hashes to its head. So is the auditor's own (--checkpoint), which is
    what catches a log whose tail was cut off along with the evidence it named.

Envelopes are read as ledger reads them, trust objects and evidence alike: a
threshold counts distinct keys whose signatures verify; a signature that claims one
of the keys asked about (an owner's, a key the policy trusts for the stage) and does
not verify is tampering, never skipped (securesystemslib's Envelope.verify skips it,
so each signature is checked here with SSlibKey.verify_signature); base64 must be
canonical and no JSON member may appear twice. Log entries and checkpoints are read
as strictly, and a checkpoint signature line naming a trusted key that does not
verify is tampering too.

The store is read as ledger reads it: a symbolic link anywhere below the store's
folder (a SHA's folder, policies/, log/, an object) is never read through, a FIFO or
any other special file in place of an object is never opened for reading, and no
object is read past its limit (4 MiB for envelopes and policies, 256 MiB for captured
output): each is a problem of the store.

Usage: python3 verify_chain.py STORE_DIR POLICY_JSON SHA
           [--signature SIG_JSON] [--root ROOT_JSON] [--owners KEYID,...]
           [--checkpoint FILE]
  --signature  the policy's signature; default: x.sig.json beside x.json, else the
               store's trust/policy/<sha256 of the policy>.json
  --root       the checkout's root of trust; default: root.json beside the policy
               (used only as explained above: the store's chain is the one in force)
  --owners     the owner key ids the CI pins, comma-separated
  --checkpoint a checkpoint the auditor saved earlier (a copy of one under
               checkpoints/): the log must still extend it
Exit 0 when every artifact verifies, 1 when the policy is not trusted, any artifact
does not verify, or the log or a checkpoint says something is wrong (each problem
printed).
Needs: pip install 'securesystemslib[crypto]'
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import json
import errno
import os
import re
import stat
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import Signature, SSlibKey

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
# folder -> the file stem of its evidence: <folder>/<sha>/<stem>[.<env>][.attempt-<n>].json
STEM = {
    "commit": "commit",
    "integration": "integration",
    "build": "build",
    "release-candidate": "manifest",
    "infra": "deployment",
    "deploy": "api-smoke",
    "release": "decision",
    "pipeline": "timing",
}
# The stages whose evidence keeps the wrapped command's output beside it (<stem>.log).
CAPTURES_OUTPUT = {"commit", "integration"}
# folder -> (name, predicate type) of the standard SLSA statement, the companion, that
# its artifacts may have beside them: <stem>[.attempt-<n>].<name>.json.
COMPANIONS = {
    "build": ("provenance", "https://slsa.dev/provenance/v1"),
    "release": ("vsa", "https://slsa.dev/verification_summary/v1"),
}
# Deploy and smoke evidence is kept per environment; the default one is never in a key.
PER_ENVIRONMENT = {"infra", "deploy"}
DEFAULT_ENVIRONMENT = "production"
SHA = re.compile(r"[0-9a-f]{40}")
# The policy's trust: see docs/policy.md.
POLICY_TYPE = "application/vnd.ledger.policy+json"
ROOT_PAYLOAD_TYPE = "application/vnd.ledger.policy-root+json"
ROOT_TYPE = "https://ledger.dev/policy-root/v1"
ROOT_PREFIX = os.path.join("trust", "root")
POLICY_SIGNATURE_PREFIX = os.path.join("trust", "policy")
KEYID = re.compile(r"^[0-9a-f]{64}$")
# The store's log and its checkpoints: see docs/evidence-format.md, "The log".
LOG_PREFIX = "log"
CHECKPOINT_PREFIX = "checkpoints"
ORIGIN = "ledger.dev/evidence-log"
MAX_ENTRY_BYTES = 1 << 20
MAX_JSON_BYTES = 4 << 20
# ledger reads a captured output log up to this size (ledger_verify::read::MAX_LOG_BYTES);
# a larger one does not verify. ledger itself stores at most 32 MiB of an output (its
# head and tail, `output.truncated: true` when it left the middle out).
MAX_LOG_BYTES = 256 << 20
MAX_CHECKPOINT_BYTES = 1 << 16
DIGEST = re.compile(r"[0-9a-f]{64}")
NO_LOG = (
    "the store has no log, so deleted evidence cannot be told from evidence never written "
    "(`ledger checkpoint --genesis` starts one from what exists)"
)


# --- DSSE envelopes ----------------------------------------------------------------


class Invalid(Exception):
    """An envelope or document that does not verify. For evidence it is a problem of
    that artifact; for a trust object, the policy is not trusted and nothing is."""


# The deepest nesting serde_json reads (its recursion limit): ledger refuses deeper.
MAX_DEPTH = 127
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


class _Duplicate:
    """Stands in for an object that names a member twice, until the walk up to the
    document's root has made the member's JSON pointer."""

    def __init__(self, pointer):
        self.pointer = pointer


def _pointer_segment(name):
    return "/" + str(name).replace("~", "~0").replace("/", "~1")


def _first_duplicate(items):
    """The pointer (below these items) of the first member named twice, in document
    order, as ledger reports it; None if there is none."""
    seen = set()
    for name, value in items:
        if name in seen:
            return _pointer_segment(name)
        inner = _duplicate_in(value)
        if inner is not None:
            return _pointer_segment(name) + inner
        seen.add(name)
    return None


def _duplicate_in(value):
    if isinstance(value, _Duplicate):
        return value.pointer
    if isinstance(value, list):  # arrays have no hook: look into them here
        return _first_duplicate(enumerate(value))
    return None


def _finite(text):
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def _integer(text):
    _finite(text)  # an integer past a double's range is refused, as serde_json refuses it
    return int(text)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def strict_json(data, what):
    """JSON as ledger reads it (docs/evidence-format.md, "Strict JSON"): UTF-8 without
    a byte order mark, no member named twice in one object at any depth (the error
    names its JSON pointer: which copy counts is what readers disagree on), nothing
    after the document, no NaN or Infinity, numbers in a double's range, no lone
    surrogate, at most MAX_DEPTH levels of nesting."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            raise Invalid(f"{what}: starts with a UTF-8 byte order mark")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"{what}: not UTF-8") from None
    if data.startswith("\ufeff"):
        raise Invalid(f"{what}: starts with a UTF-8 byte order mark")

    def pairs(items):
        pointer = _first_duplicate(items)
        return _Duplicate(pointer) if pointer is not None else dict(items)

    try:
        doc = json.loads(
            data, object_pairs_hook=pairs, parse_float=_finite, parse_int=_integer, parse_constant=_no_constant
        )
        json.dumps(doc, ensure_ascii=False, default=lambda _: None).encode("utf-8")
    except UnicodeEncodeError:  # before ValueError, which it is
        raise Invalid(f"{what}: not JSON: a string holds a lone surrogate") from None
    except (ValueError, RecursionError) as e:
        raise Invalid(f"{what}: not JSON: {e}") from None
    pointer = _duplicate_in(doc)
    if pointer is not None:
        raise Invalid(f"{what}: member {pointer} appears twice in one object")
    depth = 0
    for bracket in re.findall(r"[\[\]{}]", JSON_STRING.sub("", data)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise Invalid(f"{what}: nested deeper than {MAX_DEPTH} levels")
    return doc


def b64(text, what):
    if not isinstance(text, str):
        raise Invalid(f"{what} is not a string")
    # Canonical only (padded, no stray bits), standard or URL-safe alphabet as DSSE
    # allows and as ledger reads it: one text per bytes in either alphabet.
    for decode, encode in (
        (lambda t: base64.b64decode(t, validate=True), base64.b64encode),
        (lambda t: base64.b64decode(t, altchars=b"-_", validate=True), base64.urlsafe_b64encode),
    ):
        try:
            data = decode(text)
        except (binascii.Error, ValueError):
            continue
        if encode(data).decode() == text:
            return data
    raise Invalid(f"{what} is not valid base64")


class DsseEnvelope:
    """A DSSE envelope, read as ledger reads it: exactly payload, payloadType and
    signatures ({keyid, sig} each), canonical base64, no JSON member twice.

    Two signatures claiming one key id are refused, as Envelope.from_dict refuses
    them. Parsed here rather than with Envelope.from_dict because that accepts base64
    ledger refuses; what is signed is securesystemslib's PAE, and each signature is
    checked by securesystemslib (SSlibKey.verify_signature)."""

    def __init__(self, data, payload_type, what):
        raw = strict_json(data, what)
        if not isinstance(raw, dict) or set(raw) != {"payload", "payloadType", "signatures"}:
            raise Invalid(f"{what}: not a DSSE envelope")
        if raw["payloadType"] != payload_type:
            raise Invalid(f"{what}: payloadType is {raw['payloadType']!r}, expected {payload_type!r}")
        if not isinstance(raw["signatures"], list):
            raise Invalid(f"{what}: signatures is not a list")
        self.what = what
        self.payload = b64(raw["payload"], f"{what}: payload")
        self.signatures = []
        for i, s in enumerate(raw["signatures"]):
            if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s["keyid"], str):
                raise Invalid(f"{what}: signatures[{i}] is not {{keyid, sig}}")
            if any(s["keyid"] == k for k, _ in self.signatures):
                raise Invalid(f"{what}: signatures[{i}] repeats key id {s['keyid'][:12]}")
            self.signatures.append((s["keyid"], b64(s["sig"], f"{what}: signatures[{i}]")))
        self.pae = Envelope(self.payload, payload_type, {}).pae()

    def digest(self):
        return hashlib.sha256(self.payload).hexdigest()

    def signed_by(self, keys):
        """The distinct key ids among `keys` (keyid -> SSlibKey) whose signatures
        verify; a threshold is a count of these. A signature that claims one of `keys`
        and does not verify is tampering, never skipped: Envelope.verify would skip it
        and count the others, so this checks each signature itself."""
        signers = set()
        for keyid, sig in self.signatures:
            key = keys.get(keyid)
            if key is None:
                continue  # a key not asked about: neither counts nor fails
            try:
                key.verify_signature(Signature(keyid, sig.hex()), self.pae)
            except Exception:  # UnverifiedSignatureError, VerificationError
                raise Invalid(f"{self.what}: the signature by {keyid[:12]} does not verify") from None
            signers.add(keyid)
        return signers


# --- Evidence ----------------------------------------------------------------------


def read(path):
    with open(path, "rb") as f:
        return f.read()


def read_object(store, key, limit=MAX_JSON_BYTES):
    """Store object `key`'s bytes: a regular file reached through real folders only,
    read without blocking (a FIFO is refused, not waited on) and never past `limit`
    bytes, counted while reading. Raises Invalid for anything else, OSError if absent."""
    path = store
    parts = key.replace(os.sep, "/").split("/")
    for part in parts[:-1]:
        path = os.path.join(path, part)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise Invalid(f"{key}: {os.path.relpath(path, store)} is a symbolic link or not a folder; not read through")
    try:
        fd = os.open(os.path.join(path, parts[-1]), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Invalid(f"{key} is a symbolic link; not read through") from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise Invalid(f"{key} is not a regular file; not read")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"{key} is over the {limit}-byte limit; not read")
    return data


def sha256_object(store, key, limit=MAX_JSON_BYTES):
    """SHA-256 of store object `key` (read_object); None when it is absent."""
    try:
        return hashlib.sha256(read_object(store, key, limit)).hexdigest()
    except FileNotFoundError:
        return None


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


def evidence_key(sha, folder, environment, attempt):
    """The key of an attempt of a stage's evidence (docs/evidence-format.md)."""
    qualifier = f".{environment}" if environment else ""
    suffix = f".attempt-{attempt}" if attempt > 1 else ""
    return f"{folder}/{sha}/{STEM[folder]}{qualifier}{suffix}.json"


def parse_evidence_key(sha, key):
    """(folder, environment, attempt) of a key of `sha`'s evidence, None for any other
    key. The environment is None for the default one, which no key names; a key parses
    one way only, so one that evidence_key would not build back is not evidence."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] not in LAYOUT or parts[1] != sha:
        return None
    folder, name = parts[0], parts[2]
    environment = r"(?:\.(?!attempt-)([a-z0-9][a-z0-9_-]{0,31}))?" if folder in PER_ENVIRONMENT else "()"
    m = re.fullmatch(re.escape(STEM[folder]) + environment + r"(?:\.attempt-([1-9][0-9]{0,3}))?\.json", name)
    if not m:
        return None
    parsed = (folder, m.group(1) or None, int(m.group(2) or 1))
    return parsed if evidence_key(sha, *parsed) == key and parsed[1] != DEFAULT_ENVIRONMENT else None


def is_captured_log(sha, key):
    """Whether `key` is where a stage that captures output (commit, integration) keeps
    an attempt's log: beside its envelope, `.log` for `.json`. Any other `.log` is not
    ledger evidence, as ledger reports it."""
    ref = key.endswith(".log") and parse_evidence_key(sha, key[: -len(".log")] + ".json")
    return bool(ref) and ref[0] in CAPTURES_OUTPUT


def companion_key(sha, folder, attempt):
    """The key of the companion of an attempt of `folder`'s artifact (COMPANIONS)."""
    return evidence_key(sha, folder, None, attempt).removesuffix(".json") + f".{COMPANIONS[folder][0]}.json"


def parse_companion_key(sha, key):
    """(folder, environment, attempt) of the artifact whose companion `key` would be,
    None when `key` is no companion's key."""
    for folder, (name, _) in COMPANIONS.items():
        suffix = f".{name}.json"
        ref = key.endswith(suffix) and parse_evidence_key(sha, key.removesuffix(suffix) + ".json")
        if ref and ref[0] == folder:
            return ref
    return None


def image_subjects(sha, build):
    """The subjects a build's provenance names: one per image, in build order; a pushed
    image by its repository and manifest digest, else by its tag's repository and its
    image id."""
    subjects = []
    for image in build.get("images", []):
        if image.get("repo_digest"):
            name, _, digest = image["repo_digest"].partition("@sha256:")
        else:
            name, digest = image["reference"].removesuffix(f":{sha}"), image["image_id"].removeprefix("sha256:")
        subjects.append({"name": name, "digest": {"sha256": digest}})
    return subjects


def companion_claims(sha, folder, predicate, statement):
    """What is wrong with what a companion statement says, held to its artifact's
    predicate (docs/evidence-format.md, "Standard attestations")."""
    claims = statement["predicate"]
    if folder == "build":
        problems = []
        if statement["subject"] != image_subjects(sha, predicate):
            problems.append("subjects are not the build's images")
        first = claims["buildDefinition"]["resolvedDependencies"][0]
        if first["digest"].get("gitCommit") != sha:
            problems.append(f"its first resolved dependency is not commit {sha}")
        return problems
    problems = []
    passed = predicate.get("decision") == "promote"
    if (claims["verificationResult"] == "PASSED") != passed:
        said, decided = claims["verificationResult"], predicate.get("decision")
        problems.append(f"verificationResult is {said!r} for decision {decided!r}")
    if claims["policy"]["digest"].get("sha256") != predicate["policy_sha256"]:
        problems.append("its policy is not the one that gated the decision")
    if not isinstance(claims["resourceUri"], str) or not claims["resourceUri"].endswith(f"@{sha}"):
        problems.append(f"resourceUri does not name commit {sha}")
    return problems


def check_companion(store, sha, folder, attempt, predicate, signers):
    """Problems of the companion an artifact's predicate links (`attestation`):
    where it is, its bytes against the link, its signatures by the artifact's stage's
    keys, and what it says. `signers(envelope)` counts valid signatures, as for the
    artifact."""
    link = predicate["attestation"]
    if folder not in COMPANIONS:
        return [f"an `attestation` link, but `{LAYOUT[folder][0]}` writes no companion"]
    if not isinstance(link, dict) or set(link) != {"key", "sha256"}:
        return ["attestation is not {key, sha256}"]
    key = companion_key(sha, folder, attempt)
    if link["key"] != key:
        return [f"attestation names {str(link['key'])[:120]!r}, not its companion {key}"]
    try:
        data = read_object(store, key)
    except FileNotFoundError:
        return [f"companion {key} is missing"]
    except (Invalid, OSError) as e:
        return [f"companion {key}: {e}"]
    if hashlib.sha256(data).hexdigest() != link["sha256"]:
        return [f"hash link broken: companion {key} is not the statement the artifact signed"]
    try:
        envelope = DsseEnvelope(data, PAYLOAD_TYPE, f"companion {key}")
        problems = [f"companion {key}: {p}" for p in signers(envelope)]
        statement = strict_json(envelope.payload, f"companion {key}: payload")
        if statement.get("_type") != STATEMENT:
            problems.append(f"companion {key}: _type is {statement.get('_type')!r}")
        if statement.get("predicateType") != COMPANIONS[folder][1]:
            problems.append(f"companion {key}: predicateType is {statement.get('predicateType')!r}")
        return problems + [f"companion {key}: {p}" for p in companion_claims(sha, folder, predicate, statement)]
    except Invalid as e:
        return [str(e)]
    except Exception as e:  # fail closed on a statement of the wrong shape
        return [f"companion {key}: not a readable statement: {e!r}"]


def recorded_head_problems(log, key, head):
    """What is wrong with the log head evidence at `key` recorded (its gate's read of
    the log): the log no longer holds that head, or names the evidence at or before it
    (it cannot have been logged before its own gate ran)."""
    if (
        not isinstance(head, dict)
        or set(head) != {"size", "sha256"}
        or type(head["size"]) is not int
        or head["size"] < 1
        or not isinstance(head["sha256"], str)
        or not DIGEST.fullmatch(head["sha256"])
    ):
        return [f"log_head is not {{size >= 1, sha256: 64 lowercase hex}}: {head!r}"]
    size, problems = head["size"], []
    if size > len(log.heads):
        problems.append(
            f"its gate read the log at entry {size}, but only {len(log.heads)} entries read as a chain: "
            "the log's tail was removed or broken"
        )
    elif log.heads[size - 1] != head["sha256"]:
        problems.append(
            f"its gate read the log at entry {size}, and that entry is no longer the one it read: "
            "the log was rewritten"
        )
    named = log.named.get(key)
    if named and named[0] <= size:
        problems.append(
            f"the log names it in entry {named[0]}, not after entry {size} that its own gate read: "
            "the log was rewritten"
        )
    return problems


def check(store, policy, signed, log, sha, folder, environment, attempt):
    problems = []
    stage, predicate_type = LAYOUT[folder]
    key = evidence_key(sha, folder, environment, attempt)
    # Signatures first: nothing of the payload is read before it is authenticated.
    need = policy.get("stages", {}).get(stage, {}).get("min_signatures", 1)
    keys = trusted_keys(policy, stage)
    try:
        envelope = DsseEnvelope(read_object(store, key), PAYLOAD_TYPE, "envelope")
        accepted = envelope.signed_by({k.keyid: k for k, _ in keys})
    except Invalid as e:
        return [str(e)]
    if not accepted:
        return [f"no signature by a key the policy trusts for stage {stage}"]
    try:
        statement = strict_json(envelope.payload, "payload")
        predicate = statement["predicate"]
        finished = when(predicate["finished_at"])
    except Exception as e:
        return [f"payload is not a readable in-toto statement: {e}"]
    # A key revoked before the evidence's time does not count toward the threshold.
    revoked = {k.keyid: at for k, at in keys}

    def threshold(accepted):
        valid = [kid for kid in accepted if revoked[kid] is None or revoked[kid] > finished]
        if len(valid) < need:
            return [f"{len(valid)} signature(s) by keys not revoked at its time, {need} needed"]
        return []

    problems += threshold(accepted)
    if statement.get("_type") != STATEMENT:
        problems.append(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != predicate_type:
        problems.append(f"predicateType {statement.get('predicateType')!r} in {folder}/")
    # Images are subjects too (by digest); every gitCommit subject must be this one.
    commits = {s.get("digest", {}).get("gitCommit") for s in statement.get("subject", [])}
    commits.discard(None)
    if commits != {sha}:
        problems.append(f"subjects name commits {sorted(commits)}, not just {sha}")
    expected = {"sha": sha, "stage": stage, "attempt": attempt}
    if folder in PER_ENVIRONMENT:
        expected["environment"] = environment or DEFAULT_ENVIRONMENT
    for field, value in expected.items():
        if predicate.get(field) != value:
            problems.append(f"predicate {field} is {predicate.get(field)!r}, stored as {value!r}")
    for link in predicate.get("inputs", []):
        target = sha256_object(store, link["key"])
        if target is None:
            problems.append(f"input {link['key']} is missing")
        elif target != link["sha256"]:
            problems.append(f"hash link broken: {link['key']}")
    output = predicate.get("output")
    if output:
        if sha256_object(store, output["key"], MAX_LOG_BYTES) != output["sha256"]:
            problems.append(f"captured output {output['key']} missing or altered")
    derived = derived_result(stage, predicate)
    if derived is not None and predicate.get("result") != derived:
        problems.append(f"result is {predicate.get('result')!r}, but its own fields make it {derived!r}")
    if "attestation" in predicate:

        def signers(companion):  # the same stage's keys as the artifact's, at its time
            accepted = companion.signed_by({k.keyid: k for k, _ in keys})
            return threshold(accepted) if accepted else [f"no signature by a key the policy trusts for stage {stage}"]

        problems += check_companion(store, sha, folder, attempt, predicate, signers)
    if "log_head" in predicate and (log.files or log.problems):  # no log: reported per object
        problems += recorded_head_problems(log, key, predicate["log_head"])
    gated_by = sha256_object(store, "policies/" + predicate["policy_sha256"] + ".json")
    if gated_by != predicate["policy_sha256"]:
        problems.append(f"policy {predicate['policy_sha256'][:12]} missing or altered")
    elif predicate["policy_sha256"] not in signed:
        problems.append(f"gated by policy {predicate['policy_sha256'][:12]}, which the policy owners never signed")
    return problems


# --- The policy's root of trust --------------------------------------------------


class Root:
    """One root version: the owners' keys and how many of them must sign."""

    def __init__(self, data, what):
        self.envelope = DsseEnvelope(data, ROOT_PAYLOAD_TYPE, what)
        doc = strict_json(self.envelope.payload, what)
        if not isinstance(doc, dict) or not {"_type", "version", "threshold", "owners"} <= set(doc) <= {
            "_type", "version", "threshold", "owners"
        }:
            raise Invalid(f"{what}: not a root document (fields {sorted(doc) if isinstance(doc, dict) else doc!r})")
        if doc["_type"] != ROOT_TYPE:
            raise Invalid(f"{what}: _type is {doc['_type']!r}")
        version, threshold, owners = doc["version"], doc["threshold"], doc["owners"]
        count = lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**32  # noqa: E731
        if not count(version) or not count(threshold) or not isinstance(owners, list) or threshold > len(owners):
            raise Invalid(f"{what}: version {version!r}, threshold {threshold!r} of the owners is not valid")
        self.version, self.threshold, self.owners = version, threshold, {}
        for i, o in enumerate(owners):
            if (
                not isinstance(o, dict)
                or not {"keyid", "public_key"} <= set(o) <= {"keyid", "public_key", "comment"}
                or not all(isinstance(o[f], str) for f in ("keyid", "public_key"))
                or not isinstance(o.get("comment"), (str, type(None)))
            ):
                raise Invalid(f"{what}: owners[{i}] is not {{keyid, public_key, comment?}}")
            try:
                key = SSlibKey.from_crypto(load_pem_public_key(o["public_key"].encode()))
            except Exception as e:
                raise Invalid(f"{what}: owners[{i}].public_key: {e}") from None
            if key.keytype != "ed25519":
                raise Invalid(f"{what}: owners[{i}] is a {key.keytype} key; owners' keys are Ed25519")
            if key.keyid != o["keyid"]:
                raise Invalid(f"{what}: owners[{i}].keyid is not its key's id ({key.keyid})")
            if key.keyid in self.owners:
                raise Invalid(f"{what}: owner {key.keyid[:12]} is listed twice")
            self.owners[key.keyid] = key

    def meets(self, doc):
        """Whether a threshold of this version's owners signed `doc`; how many did."""
        have = len(doc.signed_by(self.owners))
        return have >= self.threshold, have


def extend(chain, root, what):
    """Appends `root` to the verified `chain` (oldest first; empty to start it)."""
    expected = chain[-1].version + 1 if chain else 1
    if root.version != expected:
        raise Invalid(f"{what}: holds root version {root.version}, expected {expected}")
    signers = [(chain[-1], f"the owners of version {chain[-1].version}")] if chain else []
    for owners, by in signers + [(root, "its own owners")]:
        ok, have = owners.meets(root.envelope)
        if not ok:
            raise Invalid(f"{what}: {have} valid signature(s) from {by}, {owners.threshold} required")
    chain.append(root)


def stored_files(store, prefix):
    """Every object under store/prefix, as paths relative to it (sorted). Links are
    not followed: a link (to a folder or not) is an object of its own, which
    read_object refuses; a link or file on the way to prefix is Invalid."""
    path = store
    for part in prefix.replace(os.sep, "/").split("/"):
        path = os.path.join(path, part)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise Invalid(f"{os.path.relpath(path, store)} is a symbolic link or not a folder; not read through")
    out = []
    for folder, dirs, files in os.walk(os.path.join(store, prefix)):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            if re.fullmatch(r"[^#]*#[0-9]+", name):
                continue  # a write in progress (name#<digits>): not an object yet
            out.append(os.path.relpath(os.path.join(folder, name), os.path.join(store, prefix)))
    return sorted(out)


def root_chain(store, checkout_root):
    """The verified root versions in force, oldest first: the store's, else (nothing
    pinned yet) the checkout's root as version 1; the checkout's root extends the
    store's when it is a newer version, as the next stage would pin it."""
    chain = []
    versions = []
    for name in stored_files(store, ROOT_PREFIX):
        m = re.fullmatch(r"([1-9][0-9]*)\.json", name)
        if not m:
            raise Invalid(f"stored trust/root/{name}: not a root version's name")
        versions.append((int(m.group(1)), name))
    for _, name in sorted(versions):
        what = f"stored trust/root/{name}"
        extend(chain, Root(read_object(store, os.path.join(ROOT_PREFIX, name)), what), what)
    checkout = Root(read(checkout_root), checkout_root) if checkout_root else None
    if checkout and (not chain or checkout.version > chain[-1].version):
        extend(chain, checkout, checkout_root)
    if not chain:
        raise Invalid("the store pins no policy owners (trust/root/) and there is no root file to start from")
    return chain


def check_anchor(current, owners):
    """The current owners are exactly the key ids the CI pins."""
    if not owners.strip():
        return
    wanted = sorted({o.strip() for o in owners.split(",") if o.strip()})
    for keyid in wanted:
        if not KEYID.match(keyid):
            raise Invalid(f"--owners: {keyid[:80]!r} is not a key id (64 lowercase hex digits)")
    if wanted != sorted(current.owners):
        short = lambda ids: ", ".join(i[:12] for i in ids)  # noqa: E731
        raise Invalid(
            f"the current owners ({short(sorted(current.owners))}) are not the pinned ones ({short(wanted)})"
        )


def signed_policies(store, chain, policy_bytes, signature_path):
    """Checks the policy against the current owners; returns the digests of every
    policy the owners ever signed (the current one included)."""
    current = chain[-1]
    digest = hashlib.sha256(policy_bytes).hexdigest()
    if signature_path is None:
        stored = os.path.join(store, POLICY_SIGNATURE_PREFIX, digest + ".json")
        signature_path = stored if os.path.isfile(stored) else None
    if signature_path is None:
        raise Invalid(f"policy {digest[:12]} has no signature (beside it, or in the store)")
    signature = DsseEnvelope(read(signature_path), POLICY_TYPE, signature_path)
    if signature.digest() != digest:
        raise Invalid(
            f"the policy file (sha256 {digest[:12]}) is not the policy its signature covers "
            f"(sha256 {signature.digest()[:12]}): it was edited after it was signed"
        )
    ok, have = current.meets(signature)
    if not ok:
        raise Invalid(
            f"policy {digest[:12]} is signed by {have} of the {current.threshold} required "
            f"owner(s) of root version {current.version}"
        )
    history = {digest}
    for name in stored_files(store, POLICY_SIGNATURE_PREFIX):
        if name.endswith(".log"):
            continue  # ledger reads no .log as a trust object
        what = f"stored trust/policy/{name}"
        stored = DsseEnvelope(read_object(store, os.path.join(POLICY_SIGNATURE_PREFIX, name)), POLICY_TYPE, what)
        # Every version's verdict, not the first that holds: a bad signature by any
        # owner, current or former, is tampering and must not go unread.
        if not any([root.meets(stored)[0] for root in chain]):
            raise Invalid(f"{what}: signed by a threshold of the owners of no root version")
        if name != stored.digest() + ".json":
            raise Invalid(f"{what}: signs policy {stored.digest()}, not the one it is named after")
        history.add(stored.digest())
    return history


# --- The store's log and its checkpoints ------------------------------------------


class Log:
    """The store's log, read whole and checked as a hash chain, as ledger reads it.

    `heads` holds the SHA-256 of each entry's bytes, entry 1 first, up to the first
    entry that does not read or link (a broken chain vouches for nothing after the
    break); `named` maps every key those entries name to (entry, sha256); `problems`
    are what is wrong with the log itself."""

    def __init__(self, store):
        self.heads, self.named, self.problems = [], {}, []
        entries = {}
        try:
            names = stored_files(store, LOG_PREFIX)
        except Invalid as e:
            names = []
            self.problems.append(str(e))
        for name in names:
            m = re.fullmatch(r"([0-9]{16})\.json", name)
            if not m or int(m.group(1)) == 0:
                self.problems.append(f"log/{name} is not a log entry (log/<seq, 16 digits>.json)")
            else:
                entries[int(m.group(1))] = name
        self.files = len(entries)
        for seq in range(1, len(entries) + 1):
            if seq not in entries:
                later = min(s for s in entries if s > seq)
                self.problems.append(
                    f"the log has no entry {seq}: the next is log/{entries[later]} (entries were deleted)"
                )
                break
            try:
                self.add(seq, read_object(store, os.path.join(LOG_PREFIX, entries[seq]), MAX_ENTRY_BYTES))
            except (Invalid, OSError) as e:
                self.problems.append(f"log entry log/{entries[seq]}: {e}")
                break

    def add(self, seq, data):
        """Checks entry `seq` (its exact bytes) against the chain so far, then adds it."""
        if len(data) > MAX_ENTRY_BYTES:
            raise Invalid(f"{len(data)} bytes, over the {MAX_ENTRY_BYTES}-byte limit")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("not UTF-8") from None
        entry = strict_json(text, "the entry")
        if not isinstance(entry, dict) or set(entry) != {"seq", "prev", "objects"}:
            raise Invalid(f"not {{seq, prev, objects}}: {sorted(entry) if isinstance(entry, dict) else entry!r}")
        if type(entry["seq"]) is not int or entry["seq"] != seq:
            raise Invalid(f"says it is entry {entry['seq']!r}")
        prev = self.heads[-1] if self.heads else None
        if entry["prev"] != prev:
            raise Invalid("its `prev` is not the SHA-256 of the entry before: the log was rewritten")
        if not isinstance(entry["objects"], list):
            raise Invalid("objects is not a list")
        named = {}
        for i, o in enumerate(entry["objects"]):
            if (
                not isinstance(o, dict)
                or set(o) != {"key", "sha256"}
                or not isinstance(o["key"], str)
                or not isinstance(o["sha256"], str)
                or not DIGEST.fullmatch(o["sha256"])
            ):
                raise Invalid(f"objects[{i}] is not {{key, sha256: 64 lowercase hex}}")
            try:
                o["key"].encode("utf-8")
            except UnicodeEncodeError:
                raise Invalid(f"objects[{i}].key is not Unicode text (a lone surrogate)") from None
            first = self.named.get(o["key"]) or named.get(o["key"])
            if first and first[1] != o["sha256"]:
                raise Invalid(f"names {o['key']} again with another digest (first in entry {first[0]})")
            named.setdefault(o["key"], (seq, o["sha256"]))
        for key, logged in named.items():
            self.named.setdefault(key, logged)
        self.heads.append(hashlib.sha256(data).hexdigest())

    def object_problems(self, key, digest):
        """What is wrong with object `key` of SHA-256 `digest` (None: absent) as the log
        sees it."""
        logged = self.named.get(key)
        if logged is None:
            if digest is None:
                return []
            return [
                f"{key} is not in the store's log: no writer logged it "
                "(a `ledger` killed before logging? the next run of the stage logs it)"
            ]
        if digest is None:
            return [f"the store's log names it (entry {logged[0]}): it was deleted or renamed"]
        if digest != logged[1]:
            return [
                f"{key} is not the object the log recorded in entry {logged[0]} "
                f"(sha256 {logged[1][:12]}): it was replaced"
            ]
        return []

    def extends(self, size, head):
        """Problems if the log does not extend the checkpoint (`size`, `head` hex)."""
        if size == 0:
            return []
        if size > len(self.heads):
            whole = "entries" if not self.problems else "entries that read as a chain"
            return [
                f"the log does not extend checkpoint {size}: it has only {len(self.heads)} {whole} "
                "(its tail was removed)"
            ]
        if self.heads[size - 1] != head:
            return [
                f"the log does not extend checkpoint {size}: entry {size} is not the one it signed "
                "(the log was rewritten)"
            ]
        return []


def checkpoint_keys(policy):
    """The Ed25519 keys the policy trusts for any stage (revoked or not), by their
    signed-note name: `ledger-` and the first 16 hex digits of the key id."""
    keys = {}
    for k in policy["keys"]:
        public = load_pem_public_key(k["public_key"].encode())
        if not isinstance(public, Ed25519PublicKey):
            continue
        keyid = SSlibKey.from_crypto(public).keyid
        if keyid != k["keyid"]:
            raise SystemExit(f"policy key {k['keyid']} does not match its public key")
        keys.setdefault(f"ledger-{keyid[:16]}", []).append((keyid, public))
    return keys


def b64_standard(text, what):
    """Standard base64 with padding, canonical (no stray bits), as a signed note has it."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{what} is not base64") from None
    if base64.b64encode(data).decode() != text:
        raise Invalid(f"{what} is not canonical base64")
    return data


def read_checkpoint(data, keys):
    """Parses a checkpoint (a C2SP signed note) and checks that a key among `keys`
    (from checkpoint_keys) signed it; returns (size, head hex, signer key ids). A
    signature line naming one of `keys` that does not verify is tampering."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise Invalid(f"{len(data)} bytes: not a ledger checkpoint")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("not UTF-8 text") from None
    body, blank, signatures = text.partition("\n\n")
    body += "\n"
    m = re.fullmatch(re.escape(ORIGIN) + r"\n(0|[1-9][0-9]{0,19})\n([A-Za-z0-9+/=]{44})\n", body)
    if not blank or not m or int(m.group(1)) >= 2**64:
        raise Invalid(f"not a ledger checkpoint: the body is not `{ORIGIN}`, a size and a base64 head, one a line")
    size, head = int(m.group(1)), b64_standard(m.group(2), "the head")
    if len(head) != 32:
        raise Invalid("not a ledger checkpoint: the head is not a SHA-256")
    if not signatures.endswith("\n"):
        raise Invalid("not a ledger checkpoint: no signature lines, or the last does not end with a newline")
    names, signers = [], []
    for line in signatures[:-1].split("\n"):
        m = re.fullmatch("\u2014 ([^ ]+) ([A-Za-z0-9+/=]+)", line)
        if not m:
            raise Invalid(f"not a ledger checkpoint: {line[:80]!r} is not a signature line (`\u2014 <name> <base64>`)")
        name, blob = m.group(1), b64_standard(m.group(2), f"the signature by {m.group(1)[:40]}")
        names.append(name)
        if name not in keys:
            continue  # a key the policy does not know: neither counts nor fails
        for keyid, public in keys[name]:
            key_hash = hashlib.sha256(name.encode() + b"\n\x01" + public.public_bytes(Encoding.Raw, PublicFormat.Raw))
            if len(blob) == 68 and blob[:4] == key_hash.digest()[:4]:
                try:
                    public.verify(blob[4:], body.encode())
                except InvalidSignature:
                    continue
                signers.append(keyid)
                break
        else:
            raise Invalid(f"the signature by {name} does not verify: the checkpoint was altered")
    if not signers:
        raise Invalid(f"signed by no key the policy trusts (signers: {', '.join(names) or 'none'})")
    return size, head.hex(), signers


def check_checkpoint(data, keys, log, name=None):
    """Problems of one checkpoint: its signature, its name (stored ones), and whether
    the log extends it."""
    try:
        size, head, signers = read_checkpoint(data, keys)
    except Invalid as e:
        return [str(e)]
    problems = []
    if name is not None:
        m = re.fullmatch(r"([0-9]{16})-([0-9a-f]{12})\.txt", name)
        if not m or int(m.group(1)) != size or not any(s.startswith(m.group(2)) for s in signers):
            problems.append(
                f"it is checkpoint {size} signed by {signers[0][:12]}, but not named so "
                "(<size, 16 digits>-<the signer's key id, first 12 hex>.txt): it was renamed"
            )
    return problems + log.extends(size, head)


def arguments(argv):
    parser = argparse.ArgumentParser(
        description="Verify a ledger evidence chain without ledger.",
        epilog="See the module docstring for what is checked.",
    )
    parser.add_argument("store", metavar="STORE_DIR")
    parser.add_argument("policy", metavar="POLICY_JSON")
    parser.add_argument("sha", metavar="SHA")
    parser.add_argument("--signature", metavar="SIG_JSON", help="default: x.sig.json beside x.json, else the store's")
    parser.add_argument("--root", metavar="ROOT_JSON", help="default: root.json beside the policy, if there is one")
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint saved earlier (e.g. checkpoints/<size>-<keyid>.txt): the log must extend it",
    )
    parser.add_argument(
        "--owners",
        metavar="KEYID,...",
        default=os.environ.get("LEDGER_POLICY_OWNERS", ""),
        help="the owner key ids the CI pins (default: $LEDGER_POLICY_OWNERS)",
    )
    args = parser.parse_args(argv[1:])
    if not SHA.fullmatch(args.sha):
        parser.error(f"SHA: {args.sha[:80]!r} is not a commit SHA (40 lowercase hex digits)")
    beside = lambda name: os.path.join(os.path.dirname(args.policy), name)  # noqa: E731
    if args.signature is None:
        stem = os.path.basename(args.policy).removesuffix(".json")
        args.signature = beside(stem + ".sig.json") if os.path.isfile(beside(stem + ".sig.json")) else None
    if args.root is None:
        args.root = beside("root.json") if os.path.isfile(beside("root.json")) else None
    return args


def main(argv):
    args = arguments(argv)
    store, sha = args.store, args.sha
    policy_bytes = read(args.policy)
    try:
        policy = strict_json(policy_bytes, f"policy {args.policy}")
        chain = root_chain(store, args.root)
        check_anchor(chain[-1], args.owners)
        signed = signed_policies(store, chain, policy_bytes, args.signature)
    except (Invalid, OSError) as e:  # fail closed: nothing is verified
        print(f"REFUSED  policy not trusted: {e}")
        sys.exit(1)
    current = chain[-1]
    print(
        f"policy {hashlib.sha256(policy_bytes).hexdigest()[:12]} signed by its owners "
        f"(root version {current.version}, {current.threshold} of {len(current.owners)}); "
        f"{len(signed)} signed polic{'y' if len(signed) == 1 else 'ies'} in its history"
    )
    failed = checked = verified = 0

    def report(key, problems, quiet=False):
        nonlocal failed
        if problems or not quiet:
            print(("ok    " if not problems else "FAIL  ") + key)
        for p in problems:
            print(f"      {p}")
        failed += bool(problems)
        return not problems

    log = Log(store)
    if log.problems:
        report("log/", log.problems)
    if not log.heads:  # every piece of evidence fails: nothing says what the set was
        no_log = NO_LOG if not log.files and not log.problems else "the store's log does not read (log/ above)"
    # Every object stored under the commit's prefixes, and every one the log names
    # there: a missing one was deleted or renamed, an unnamed one no writer logged.
    stored, attempts, refused = {}, {}, {}
    for folder in LAYOUT:
        try:
            names = stored_files(store, os.path.join(folder, sha))
        except Invalid as e:  # the SHA's folder is a link: nothing of it is read
            report(f"{folder}/{sha}", [str(e)])
            names = []
        for name in names:
            key = f"{folder}/{sha}/{name.replace(os.sep, '/')}"
            try:
                stored[key] = sha256_object(store, key, MAX_LOG_BYTES if key.endswith(".log") else MAX_JSON_BYTES)
            except Invalid as e:  # a link, a FIFO, over its limit: never evidence
                stored[key], refused[key] = "", str(e)
    prefixes = tuple(f"{folder}/{sha}/" for folder in LAYOUT)
    logged = {key for key in log.named if key.startswith(prefixes)}

    def order(key):  # stage by stage, environment by environment, attempt by attempt
        ref = parse_evidence_key(sha, key) or parse_companion_key(sha, key)
        return (list(LAYOUT).index(key.split("/")[0]), ref[1] or "", ref[2], key) if ref else (len(LAYOUT), "", 0, key)


    for key in sorted(stored.keys() | logged, key=order):
        digest = stored.get(key)
        ref = parse_evidence_key(sha, key)
        if log.heads:
            problems = log.object_problems(key, digest)
        else:
            problems = [no_log] if ref else []
        if key in refused:
            problems = [refused[key]] + problems
        if ref:
            attempts.setdefault(ref[:2], set()).add(ref[2])
        if is_captured_log(sha, key):
            report(key, problems, quiet=True)  # checked with the envelope that names it
            continue
        beside = parse_companion_key(sha, key)
        if beside and evidence_key(sha, *beside) in stored:  # else a stray, as ledger lists it
            report(key, problems, quiet=True)  # checked with the artifact that links it
            continue
        if not ref:
            report(key, ["not ledger evidence"] + problems)
            continue
        checked += 1
        if digest is None:
            report(key, [f"{key} is missing from the store"] + problems)
            continue
        try:
            problems = check(store, policy, signed, log, sha, *ref) + problems
        except Exception as e:  # fail closed on anything unexpected
            problems = [f"unreadable: {e!r}"] + problems
        verified += report(key, problems)
    # Attempts are numbered from 1 without a hole: a hole is an attempt removed from
    # both the store and the log.
    for (folder, environment), numbers in sorted(attempts.items(), key=lambda a: (a[0][0], a[0][1] or "")):
        missing = next(n for n in range(1, len(numbers) + 2) if n not in numbers)
        if missing <= max(numbers):
            report(
                evidence_key(sha, folder, environment, missing),
                [
                    f"attempt {missing} of `{LAYOUT[folder][0]}` is neither stored nor logged, "
                    "but later attempts are: it was removed"
                ],
            )
    if checked == 0:
        print(f"no evidence for {sha} in {store}")
        sys.exit(1)
    # Checkpoints: each signed by a key the policy trusts, and each extended by the
    # log; the auditor's own (--checkpoint) as well, which catches a cut-back tail.
    try:
        keys = checkpoint_keys(policy)
    except Exception as e:  # fail closed
        report("checkpoints/", [f"the policy's keys do not read: {e!r}"])
        keys = {}
    try:
        checkpoints = stored_files(store, CHECKPOINT_PREFIX)
    except Invalid as e:
        report("checkpoints/", [str(e)])
        checkpoints = []
    for name in checkpoints:
        try:
            data = read_object(store, os.path.join(CHECKPOINT_PREFIX, name), MAX_CHECKPOINT_BYTES)
            problems = check_checkpoint(data, keys, log, name)
        except (Invalid, OSError) as e:
            problems = [f"unreadable: {e}"]
        report(f"checkpoints/{name.replace(os.sep, '/')}", problems)
    if args.checkpoint:
        try:
            problems = check_checkpoint(read(args.checkpoint), keys, log)
        except OSError as e:
            problems = [f"unreadable: {e}"]
        report(f"checkpoint {args.checkpoint} (--checkpoint)", problems)
    print(f"{verified} of {checked} artifact(s) verified; the log has {len(log.heads)} entries")
    sys.exit(1 if failed else 0)

if __name__ == "__main__":
    main(sys.argv)
