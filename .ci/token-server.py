"""A registry token service (the distribution spec's token authentication) for the
bearer-token tests: HTTPS on loopback, checks a user name and password given as
basic authentication, and answers with an ES256 JWT signed by its own key, whose
certificate rides in the token's x5c header and is the registry's rootcertbundle.

Usage: token-server.py PORT TLS_CERT TLS_KEY SIGNING_CERT SIGNING_KEY ISSUER SERVICE
with the accepted user and password in TOKEN_SERVER_USER / TOKEN_SERVER_PASSWORD.
Every request for a scope gets the actions it asks for: the test is about the
protocol and the credential, not about authorisation rules.
"""

import base64
import hmac
import json
import os
import ssl
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PORT, TLS_CERT, TLS_KEY, SIGNING_CERT, SIGNING_KEY, ISSUER, SERVICE = sys.argv[1:8]
USER = os.environ["TOKEN_SERVER_USER"]
PASSWORD = os.environ["TOKEN_SERVER_PASSWORD"]

with open(SIGNING_KEY, "rb") as f:
    KEY = serialization.load_pem_private_key(f.read(), password=None)
with open(SIGNING_CERT, "rb") as f:
    CERT_DER = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_of(scopes):
    out = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind and name:
            out.append({"type": kind, "name": name, "actions": actions.split(",")})
    return out


def token(scopes) -> str:
    now = int(time.time())
    header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(CERT_DER).decode()]}
    claims = {
        "iss": ISSUER,
        "sub": USER,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": access_of(scopes),
    }
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            return
        query = parse_qs(url.query)
        body = json.dumps({"token": token(query.get("scope", [])), "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(TLS_CERT, TLS_KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
