"""An issuer for the tests: signing keys made with `cryptography`, and their JWKS served on
127.0.0.1 by a real HTTP server in a thread, which a test can rotate, break or stop."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

USER = UUID("3c9a7e21-5b4d-4f86-a0e3-7d1b2c6f8e45")


@dataclass
class IssuerKey:
    kid: str
    algorithm: str  # RS256 or ES256
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def rsa(cls, kid: str) -> IssuerKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> IssuerKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        """The public JWK as Supabase publishes it (with `alg` and `use`)."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, claims: dict[str, Any] | None = None, *, kid: str | None = None) -> str:
        """A token signed with this key, naming `kid` (its own unless given)."""
        return jwt.encode(
            payload(claims),
            self.private,
            algorithm=self.algorithm,
            headers={"kid": kid or self.kid},
        )


def payload(claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid token's claims for USER, changed by `claims` (None removes a claim)."""
    now = int(datetime.now(UTC).timestamp())
    values: dict[str, Any] = {"sub": str(USER), "iat": now, "exp": now + 600}
    values.update(claims or {})
    return {k: v for k, v in values.items() if v is not None}


def jwks(*keys: IssuerKey) -> bytes:
    return json.dumps({"keys": [key.jwk() for key in keys]}).encode()


class JwksServer:
    """`GET /jwks.json` answers `document` with `status`; `hits` counts the requests."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.status = 200
        self.hits = 0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/jwks.json"

    def serve(self, *keys: IssuerKey) -> None:
        self.document = jwks(*keys)

    def stop(self) -> None:
        """Nothing listens on the port any more: fetches are refused."""
        if not self._stopped:
            self._stopped = True
            self._http.shutdown()
            self._http.server_close()
            self._thread.join()

    def _answer(self) -> tuple[int, bytes]:
        with self._lock:
            self.hits += 1
            return self.status, self.document

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                status, body = server._answer()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the tests' output stays readable

        return Handler
