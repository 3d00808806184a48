"""Keys, JWKS documents and signed tokens for the tests of the node's JWT bearer authentication,
with python3-cryptography: RSA, EC (P-256/P-384/P-521), Ed25519 and HMAC keys; the JWKS JSON a
node is given (every key with its "alg" and "kid"); tokens signed with a chosen header and
claims (RS*, PS*, ES* as raw R||S, EdDSA, HS*); and the forgeries a verifier must refuse, the
alg-confusion token (HS256 MACed with the RSA public key's PEM) first among them.

    python3 tests/integration/jwtutil.py     checks its own ES256 and RS256 output round-trips
"""

import base64
import hashlib
import hmac
import json
import os
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_CURVES = {"ES256": (ec.SECP256R1, "P-256", 32), "ES384": (ec.SECP384R1, "P-384", 48),
           "ES512": (ec.SECP521R1, "P-521", 66)}


def b64url(data):
    """base64url without padding (RFC 7515 §2)."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _uint(n, length=None):
    length = length or max(1, (n.bit_length() + 7) // 8)
    return n.to_bytes(length, "big")


class Key:
    """A signing key pinned to one alg, with its kid. .private is the cryptography object (bytes
    for HMAC)."""

    def __init__(self, alg, private, kid=None):
        self.alg = alg
        self.private = private
        self.kid = kid

    @classmethod
    def generate(cls, alg, kid=None, bits=2048, secret_len=64):
        if alg[:2] in ("RS", "PS"):
            private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        elif alg in _CURVES:
            private = ec.generate_private_key(_CURVES[alg][0]())
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        elif alg in _HMAC_HASHES:
            private = os.urandom(secret_len)
        else:
            raise ValueError("unsupported alg %r" % alg)
        return cls(alg, private, kid if kid is not None else alg.lower())

    def public_pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwk(self, with_private=False):
        """The public JWK (with alg and kid); with_private adds "d" (or keeps "k" for HMAC),
        for the tests of a JWKS the node must refuse."""
        if self.alg in _HMAC_HASHES:
            j = {"kty": "oct", "k": b64url(self.private)}
        elif self.alg[:2] in ("RS", "PS"):
            pub = self.private.public_key().public_numbers()
            j = {"kty": "RSA", "n": b64url(_uint(pub.n)), "e": b64url(_uint(pub.e))}
            if with_private:
                j["d"] = b64url(_uint(self.private.private_numbers().d))
        elif self.alg in _CURVES:
            size = _CURVES[self.alg][2]
            pub = self.private.public_key().public_numbers()
            j = {"kty": "EC", "crv": _CURVES[self.alg][1], "x": b64url(_uint(pub.x, size)),
                 "y": b64url(_uint(pub.y, size))}
            if with_private:
                j["d"] = b64url(_uint(self.private.private_numbers().private_value, size))
        else:
            raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)
            j = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
            if with_private:
                j["d"] = b64url(self.private.private_bytes(serialization.Encoding.Raw,
                                                           serialization.PrivateFormat.Raw,
                                                           serialization.NoEncryption()))
        j["alg"] = self.alg
        if self.kid is not None:
            j["kid"] = self.kid
        return j

    def sign(self, data):
        """The JWS signature of data (bytes) with this key's alg."""
        alg = self.alg
        if alg in _HMAC_HASHES:
            return hmac.new(self.private, data, _HMAC_HASHES[alg]).digest()
        if alg.startswith("RS"):
            return self.private.sign(data, padding.PKCS1v15(), _HASHES[alg[2:]]())
        if alg.startswith("PS"):
            h = _HASHES[alg[2:]]()
            return self.private.sign(data, padding.PSS(mgf=padding.MGF1(h),
                                                       salt_length=h.digest_size), h)
        if alg in _CURVES:
            der = self.private.sign(data, ec.ECDSA(_HASHES[alg[2:]]()))
            r, s = decode_dss_signature(der)
            size = _CURVES[alg][2]
            return _uint(r, size) + _uint(s, size)
        return self.private.sign(data)


def jwks(*keys, with_private=False):
    """The JWKS JSON text of keys."""
    return json.dumps({"keys": [k.jwk(with_private=with_private) for k in keys]})


def claims(issuer, audience, sub="user-1", lifetime=600, now=None, **extra):
    """Standard claims: iss, aud, sub, iat, exp (now + lifetime), and any extra ones."""
    now = int(time.time()) if now is None else now
    c = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + lifetime}
    c.update(extra)
    return c


def _segment(obj):
    return b64url(obj if isinstance(obj, (bytes, str)) else json.dumps(obj, separators=(",", ":")))


def token(key, payload, header=None, kid=True):
    """A compact JWS of payload (a dict, or raw str/bytes) signed with key. header: a dict
    (default {"alg": key.alg, "typ": "JWT"} plus the kid when kid is True), or raw str/bytes,
    used as is, alg and all."""
    if header is None:
        header = {"alg": key.alg, "typ": "JWT"}
        if kid and key.kid is not None:
            header["kid"] = key.kid
    signing_input = _segment(header) + "." + _segment(payload)
    return signing_input + "." + b64url(key.sign(signing_input.encode()))


def alg_confusion_token(rsa_key, payload, kid=True):
    """The forgery: HS256 MACed with the RSA public key's PEM, for a verifier that takes the
    header's alg and the key's bytes as an HMAC secret. A correct verifier refuses it."""
    header = {"alg": "HS256", "typ": "JWT"}
    if kid and rsa_key.kid is not None:
        header["kid"] = rsa_key.kid
    signing_input = _segment(header) + "." + _segment(payload)
    mac = hmac.new(rsa_key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def none_token(payload, alg="none"):
    """An unsigned token ("alg": "none", empty signature)."""
    return _segment({"alg": alg, "typ": "JWT"}) + "." + _segment(payload) + "."


def der_ecdsa_token(ec_key, payload):
    """An ES* token whose signature is left in DER (ASN.1) rather than raw R||S: refused."""
    header = {"alg": ec_key.alg, "typ": "JWT", "kid": ec_key.kid}
    signing_input = _segment(header) + "." + _segment(payload)
    der = ec_key.private.sign(signing_input.encode(), ec.ECDSA(_HASHES[ec_key.alg[2:]]()))
    return signing_input + "." + b64url(der)


def tamper(tok, segment=1):
    """tok with one bit of a segment's decoded bytes flipped (0 header, 1 payload, 2 sig)."""
    parts = tok.split(".")
    raw = bytearray(b64url_decode(parts[segment]))
    raw[len(raw) // 2] ^= 0x01
    parts[segment] = b64url(bytes(raw))
    return ".".join(parts)


def _self_check():
    now = int(time.time())
    c = claims("https://idp.example.org", "warren", now=now, preferred_username="alice")

    # ES256: the raw R||S of a token verifies with cryptography once made DER again.
    key = Key.generate("ES256", kid="ec1")
    tok = token(key, c)
    h, p, s = tok.split(".")
    assert json.loads(b64url_decode(h)) == {"alg": "ES256", "typ": "JWT", "kid": "ec1"}
    assert json.loads(b64url_decode(p)) == c
    sig = b64url_decode(s)
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url_decode(key.jwk()["x"]), "big"),
                                        int.from_bytes(b64url_decode(key.jwk()["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    pub.verify(der, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
    try:
        pub.verify(der, tamper(tok).rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256()))
        raise AssertionError("a tampered ES256 token verified")
    except InvalidSignature:
        pass

    # RS256, PS256, EdDSA, HS256 with the public key rebuilt from the JWK.
    rsa_key = Key.generate("RS256", kid="r1")
    j = rsa_key.jwk()
    n = int.from_bytes(b64url_decode(j["n"]), "big")
    e = int.from_bytes(b64url_decode(j["e"]), "big")
    rpub = rsa.RSAPublicNumbers(e, n).public_key()
    h, p, s = token(rsa_key, c).split(".")
    rpub.verify(b64url_decode(s), (h + "." + p).encode(), padding.PKCS1v15(), hashes.SHA256())
    ps = Key("PS256", rsa_key.private, "p1")
    h, p, s = token(ps, c).split(".")
    rpub.verify(b64url_decode(s), (h + "." + p).encode(),
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    ed = Key.generate("EdDSA")
    h, p, s = token(ed, c).split(".")
    ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(ed.jwk()["x"])).verify(
        b64url_decode(s), (h + "." + p).encode())
    hs = Key.generate("HS256")
    h, p, s = token(hs, c).split(".")
    assert hmac.compare_digest(b64url_decode(s), hmac.new(
        b64url_decode(hs.jwk()["k"]), (h + "." + p).encode(), hashlib.sha256).digest())

    # The forgery is an HS256 MAC keyed with the PEM; the JWKS carries alg and kid, no "d".
    forged = alg_confusion_token(rsa_key, c)
    h, p, s = forged.split(".")
    assert json.loads(b64url_decode(h))["alg"] == "HS256"
    assert b64url_decode(s) == hmac.new(rsa_key.public_pem(), (h + "." + p).encode(),
                                        hashlib.sha256).digest()
    doc = json.loads(jwks(key, rsa_key, ed, hs))
    assert [k["alg"] for k in doc["keys"]] == ["ES256", "RS256", "EdDSA", "HS256"]
    assert all("d" not in k and "kid" in k for k in doc["keys"])
    assert "d" in json.loads(jwks(key, with_private=True))["keys"][0]
    assert len(b64url_decode(der_ecdsa_token(key, c).split(".")[2])) != 64
    assert none_token(c).endswith(".")
    print("jwtutil: self-check passed")


if __name__ == "__main__":
    _self_check()
