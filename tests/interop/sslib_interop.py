"""Independent check of ledger's formats with Python securesystemslib.

ledger promises that its evidence is standard DSSE + in-toto and that its key ids are
the ones securesystemslib computes, so auditors can verify without ledger. The Rust
test suite drives this script to prove that both ways:

  keyid  PUBKEY_PEM                    print securesystemslib's key id of the key
  verify ENVELOPE_JSON PUBKEY_PEM      verify a ledger envelope, print its payload
  sign   PRIVKEY_PEM PAYLOAD OUT_JSON  sign a payload as an in-toto DSSE envelope
  verify-policy SIG_JSON POLICY_JSON PUBKEY_PEM
                                       verify a policy signature envelope and that it
                                       carries the policy file's exact bytes
  verify-root ROOT_JSON PUBKEY_PEM     verify a policy root envelope signed by the key,
                                       print the root document

The policy and root envelopes are DSSE too, around the document's bytes under
payload types of their own (application/vnd.ledger.policy+json and
application/vnd.ledger.policy-root+json), so securesystemslib verifies them as is.

Exit 0 on success; 1 with a message on stderr when verification fails.
"""

import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
POLICY_PAYLOAD_TYPE = "application/vnd.ledger.policy+json"
ROOT_PAYLOAD_TYPE = "application/vnd.ledger.policy-root+json"


def load_public(path):
    with open(path, "rb") as f:
        return SSlibKey.from_crypto(load_pem_public_key(f.read()))


def cmd_keyid(pub):
    print(load_public(pub).keyid)


def verified(envelope_path, pub, payload_type):
    """The envelope at `envelope_path` and the key ids that verified it; exits 1 when
    it is not of `payload_type` or `pub` did not sign it."""
    with open(envelope_path, "rb") as f:
        envelope = Envelope.from_dict(json.load(f))
    if envelope.payload_type != payload_type:
        sys.exit(f"wrong payloadType {envelope.payload_type!r}")
    try:
        accepted = envelope.verify([load_public(pub)], 1)
    except Exception as e:  # VerificationError and malformed signatures alike
        print(f"verification failed: {e}", file=sys.stderr)
        sys.exit(1)
    return envelope, sorted(accepted)


def cmd_verify(envelope_path, pub):
    envelope, keyids = verified(envelope_path, pub, PAYLOAD_TYPE)
    print(json.dumps({"keyids": keyids, "payload": json.loads(envelope.payload)}))


def cmd_verify_policy(signature_path, policy_path, pub):
    envelope, keyids = verified(signature_path, pub, POLICY_PAYLOAD_TYPE)
    with open(policy_path, "rb") as f:
        policy = f.read()
    if envelope.payload != policy:
        sys.exit(f"the signature covers other bytes than {policy_path}")
    print(json.dumps({"keyids": keyids, "sha256": hashlib.sha256(policy).hexdigest()}))


def cmd_verify_root(root_path, pub):
    envelope, keyids = verified(root_path, pub, ROOT_PAYLOAD_TYPE)
    print(json.dumps({"keyids": keyids, "payload": json.loads(envelope.payload)}))


def cmd_sign(priv, payload_path, out):
    with open(priv, "rb") as f:
        signer = CryptoSigner(load_pem_private_key(f.read(), password=None))
    with open(payload_path, "rb") as f:
        payload = f.read()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    with open(out, "w") as f:
        json.dump(envelope.to_dict(), f)


def main(argv):
    commands = {
        "keyid": (cmd_keyid, 1),
        "verify": (cmd_verify, 2),
        "sign": (cmd_sign, 3),
        "verify-policy": (cmd_verify_policy, 3),
        "verify-root": (cmd_verify_root, 2),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        sys.exit(__doc__)
    fn, _ = commands[argv[1]]
    fn(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
