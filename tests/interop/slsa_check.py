"""Checks SLSA statements with the in-toto project's own models, not ledger's.

ledger writes two standard statements beside its own evidence (docs/evidence-format.md,
"Standard attestations"): SLSA Provenance v1 beside a build, a SLSA Verification Summary
(VSA) v1 beside a decision. Tools that know SLSA and not ledger read them, so the Rust
test suite hands every such envelope ledger writes to this script, which reads it the
way those tools' libraries do:

  python3 slsa_check.py --key PUBKEY_PEM [--key PUBKEY_PEM ...] ENVELOPE_JSON ...

For each envelope:

  1. securesystemslib verifies the DSSE signature (payloadType
     application/vnd.in-toto+json) by one of the keys (SPKI PEM);
  2. the payload is parsed into in-toto-attestation's Statement v1 message with
     protobuf's json_format.Parse, unknown fields refused, and its validate() runs
     (statement type, at least one subject, each subject a valid ResourceDescriptor
     with a digest, a predicate type and a predicate);
  3. the predicate is parsed into the model of its predicateType, unknown fields
     refused: in_toto_attestation.predicates.provenance.v1.Provenance or
     ...vsa.v1.VerificationSummary. The Python package has validators only for the
     Statement and the ResourceDescriptor, so the rules of its Go package's
     Provenance.Validate() are applied here (buildDefinition with a buildType and
     externalParameters, runDetails with a builder id, every descriptor valid), and
     for a VSA the fields SLSA VSA v1.0 requires (verifier.id, resourceUri, policy,
     verificationResult PASSED or FAILED, verifiedLevels). Every ResourceDescriptor's
     digests are checked as the Go package checks them: hex of the algorithm's size.

in-toto-attestation 0.9.3's VSA v1 model lags the SLSA VSA v1.0 spec in two fields
(in-toto/attestation issue 425, pull request 429; slsa-framework/slsa pull request
905): its Verifier has no `version` (the spec's optional map of component versions)
and its `verified_levels` is one string where the spec has an array of strings. The
script checks those two fields against the spec by hand, then parses the rest into the
model strictly; a model that has caught up (a repeated verified_levels, a Verifier
with a version) is used as is, with nothing taken out.

Prints one JSON line per envelope: {"envelope", "predicateType", "subjects",
"keyids", "model_gaps"} (the fields checked by hand). Exits 0 when every envelope
passes, 1 with a message naming the envelope and the failure otherwise.
Needs: pip install 'securesystemslib[crypto]' 'in-toto-attestation>=0.9.3,<0.10'
"""

import argparse
import json
import re
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PROVENANCE = "https://slsa.dev/provenance/v1"
VSA = "https://slsa.dev/verification_summary/v1"
# Digest sizes in bytes of the algorithms in-toto's Go ResourceDescriptor.Validate()
# checks (go/v1/resource_descriptor.go); others are allowed as they are.
DIGEST_SIZES = {
    "md5": 16, "sha1": 20, "sha224": 28, "sha512_224": 28, "sha256": 32, "sha512_256": 32,
    "sha384": 48, "sha512": 64, "sha3_224": 28, "sha3_256": 32, "sha3_384": 48,
    "sha3_512": 64, "gitCommit": 20, "dirHash": 32,
}
# SLSA VSA v1.0: a verified level is SLSA_<TRACK>_LEVEL_<n>, FAILED, or an
# organisation's own property, which must not use the SLSA_ prefix.
SLSA_LEVEL = re.compile(r"SLSA_[A-Z]+_LEVEL_[0-9]+")


class Failure(Exception):
    """What is wrong with one envelope."""


def no_duplicates(pairs):
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise Failure(f"member {name!r} appears twice in one object")
    return dict(pairs)


def verify_envelope(path, keys):
    """The payload of the DSSE envelope at `path` and the ids of the keys that signed
    it (securesystemslib's Envelope.verify, threshold 1)."""
    with open(path, "rb") as f:
        raw = json.loads(f.read().decode("utf-8"), object_pairs_hook=no_duplicates)
    envelope = Envelope.from_dict(raw)
    if envelope.payload_type != PAYLOAD_TYPE:
        raise Failure(f"payloadType is {envelope.payload_type!r}, not {PAYLOAD_TYPE}")
    try:
        accepted = envelope.verify(keys, 1)
    except Exception as e:  # VerificationError, malformed signatures
        raise Failure(f"the DSSE signature does not verify with the given key(s): {e}") from None
    return envelope.payload, sorted(accepted)


def check_descriptor(pb, where):
    """in-toto-attestation's ResourceDescriptor.validate(), then the Go package's
    digest rules (hex of the algorithm's size)."""
    try:
        ResourceDescriptor.copy_from_pb(pb).validate()
    except ValueError as e:
        raise Failure(f"{where}: {e}") from None
    for algorithm, value in pb.digest.items():
        size = DIGEST_SIZES.get(algorithm)
        if size is not None and not re.fullmatch(f"[0-9a-fA-F]{{{2 * size}}}", value):
            raise Failure(f"{where}: digest {algorithm} is not {size} bytes of hex: {value[:80]!r}")


def parse_statement(payload):
    """The payload as in-toto-attestation's Statement (strict), validated; and as JSON."""
    try:
        text = payload.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=no_duplicates)
        pb = json_format.Parse(text, statement_pb2.Statement())  # unknown fields refused
        Statement.copy_from_pb(pb).validate()
    except (UnicodeDecodeError, json.JSONDecodeError, json_format.ParseError, ValueError) as e:
        raise Failure(f"not an in-toto Statement v1: {e}") from None
    for i, subject in enumerate(pb.subject):
        check_descriptor(subject, f"subject[{i}]")
    return pb, doc


def strict_model(predicate, message, where):
    try:
        return json_format.ParseDict(predicate, message)  # ignore_unknown_fields=False
    except json_format.ParseError as e:
        raise Failure(f"{where}: {e}") from None


def check_provenance(predicate):
    """SLSA Provenance v1 into in-toto-attestation's Provenance, then the rules of the
    Go package's Provenance.Validate()."""
    pb = strict_model(predicate, provenance_pb2.Provenance(), "provenance predicate")
    if not pb.HasField("build_definition"):
        raise Failure("provenance: buildDefinition required")
    definition = pb.build_definition
    if not definition.build_type:
        raise Failure("provenance: buildDefinition.buildType required")
    if not definition.HasField("external_parameters"):
        raise Failure("provenance: buildDefinition.externalParameters required")
    for i, rd in enumerate(definition.resolved_dependencies):
        check_descriptor(rd, f"provenance: buildDefinition.resolvedDependencies[{i}]")
    if not pb.HasField("run_details") or not pb.run_details.HasField("builder"):
        raise Failure("provenance: runDetails.builder required")
    if not pb.run_details.builder.id:
        raise Failure("provenance: runDetails.builder.id required")
    for i, rd in enumerate(pb.run_details.builder.builder_dependencies):
        check_descriptor(rd, f"provenance: runDetails.builder.builderDependencies[{i}]")
    for i, rd in enumerate(pb.run_details.byproducts):
        check_descriptor(rd, f"provenance: runDetails.byproducts[{i}]")
    return []


def vsa_model_gaps():
    """The VSA v1 fields the installed model cannot hold as SLSA VSA v1.0 has them."""
    gaps = []
    if "version" not in vsa_pb2.VerificationSummary.Verifier.DESCRIPTOR.fields_by_name:
        gaps.append("verifier.version")
    levels = vsa_pb2.VerificationSummary.DESCRIPTOR.fields_by_name["verified_levels"]
    if not (levels.is_repeated if hasattr(levels, "is_repeated") else levels.label == levels.LABEL_REPEATED):
        gaps.append("verifiedLevels")
    return gaps


def take_gaps(predicate, gaps):
    """Checks the fields the model cannot hold (`gaps`) against SLSA VSA v1.0; returns
    the predicate without them, and the verified levels when they were one of them."""
    rest, levels = json.loads(json.dumps(predicate)), None
    verifier = rest.get("verifier")
    if "verifier.version" in gaps and isinstance(verifier, dict) and "version" in verifier:
        version = verifier.pop("version")
        if not isinstance(version, dict) or not all(isinstance(v, str) for v in version.values()):
            raise Failure("vsa: verifier.version is not a map of component name to version string")
    if "verifiedLevels" in gaps and "verifiedLevels" in rest:
        levels = rest.pop("verifiedLevels")
        if not isinstance(levels, list) or not all(isinstance(v, str) and v for v in levels):
            raise Failure(f"vsa: verifiedLevels is not an array of non-empty strings: {levels!r}"[:200])
    return rest, levels


def check_vsa(predicate):
    """SLSA VSA v1 into in-toto-attestation's VerificationSummary (strictly, but for the
    model's gaps, checked by hand), then the fields SLSA VSA v1.0 requires."""
    gaps = vsa_model_gaps()
    rest, levels = take_gaps(predicate, gaps)
    pb = strict_model(rest, vsa_pb2.VerificationSummary(), "vsa predicate")
    if "verifiedLevels" not in gaps:
        levels = list(pb.verified_levels)
    if not pb.verifier.id:
        raise Failure("vsa: verifier.id required")
    if not pb.resource_uri:
        raise Failure("vsa: resourceUri required")
    if not pb.HasField("policy") or not (pb.policy.uri or pb.policy.digest):
        raise Failure("vsa: policy required (a uri or a digest)")
    for i, attestation in enumerate(pb.input_attestations):
        if not attestation.uri and not attestation.digest:
            raise Failure(f"vsa: inputAttestations[{i}] has neither uri nor digest")
    if pb.verification_result not in ("PASSED", "FAILED"):
        raise Failure(f"vsa: verificationResult is {pb.verification_result!r}, not PASSED or FAILED")
    if not levels:
        raise Failure("vsa: verifiedLevels required")
    for level in levels:
        if level.startswith("SLSA_") and not SLSA_LEVEL.fullmatch(level):
            raise Failure(f"vsa: verified level {level!r} uses the SLSA_ prefix but is no SLSA level")
    if pb.slsa_version and not re.fullmatch(r"[0-9]+\.[0-9]+", pb.slsa_version):
        raise Failure(f"vsa: slsaVersion {pb.slsa_version!r} is not MAJOR.MINOR")
    return gaps


PREDICATES = {PROVENANCE: check_provenance, VSA: check_vsa}


def check(path, keys):
    payload, keyids = verify_envelope(path, keys)
    pb, doc = parse_statement(payload)
    checker = PREDICATES.get(pb.predicate_type)
    if checker is None:
        raise Failure(f"predicateType {pb.predicate_type!r} is neither {PROVENANCE} nor {VSA}")
    gaps = checker(doc["predicate"])
    return {
        "envelope": path,
        "predicateType": pb.predicate_type,
        "subjects": [json_format.MessageToDict(s) for s in pb.subject],
        "keyids": keyids,
        "model_gaps": gaps,
    }


def main(argv):
    parser = argparse.ArgumentParser(description="Check SLSA statements with in-toto-attestation.")
    parser.add_argument("--key", action="append", required=True, metavar="PUBKEY_PEM")
    parser.add_argument("envelopes", nargs="+", metavar="ENVELOPE_JSON")
    args = parser.parse_args(argv[1:])
    keys = []
    for path in args.key:
        with open(path, "rb") as f:
            keys.append(SSlibKey.from_crypto(load_pem_public_key(f.read())))
    failed = 0
    for path in args.envelopes:
        try:
            print(json.dumps(check(path, keys)))
        except (Failure, OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as e:
            print(f"FAIL {path}: {' '.join(str(e).split())}", file=sys.stderr)
            failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv)
