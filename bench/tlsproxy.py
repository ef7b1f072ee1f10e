"""A TLS-terminating TCP proxy for the cold-start bench, and the throwaway PKI it serves.

In Lambda a function reaches DynamoDB over HTTPS, so the first response of a cold function that
calls it includes building the SDK's HTTPS client, loading the root certificates and the first TLS
handshake. The emulator (tools/emulator.py) speaks plain HTTP: this proxy puts TLS in front of it.

    python bench/tlsproxy.py DIR PORT UPSTREAM_HOST:UPSTREAM_PORT

`certs(DIR)` writes (once) a root CA, an intermediate CA and a server certificate for 127.0.0.1
and localhost, RSA 2048 like the chain DynamoDB's endpoints present (leaf <- "Amazon RSA 2048 Mxx"
<- "Amazon Root CA 1"), so that the client verifies a chain of the same shape. The proxy sends the
leaf and the intermediate; a client trusts the root through SSL_CERT_FILE. Listens on 127.0.0.1
only; every connection is relayed to UPSTREAM (a loopback address) until either side closes.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import sys
from pathlib import Path


def certs(d: Path) -> dict[str, Path]:
    """The PKI's files in `d`, made on the first call: ca.pem (the root, to trust), chain.pem
    (leaf + intermediate, served), key.pem (the leaf's key)."""
    out = {"ca": d / "ca.pem", "chain": d / "chain.pem", "key": d / "key.pem"}
    if all(p.exists() for p in out.values()):
        return out
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse bench"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(subject: str, key, issuer: str, issuer_key, ca: bool, days: int, extra=()) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None if subject == issuer else 0 if ca else None),
                           critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=not ca,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                         crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if subject != issuer:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                critical=False)
        for ext in extra:
            b = b.add_extension(ext, critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    root_key, mid_key, leaf_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3))
    root = issue("Gatehouse bench root CA", root_key, "Gatehouse bench root CA", root_key, True, 3650)
    mid = issue("Gatehouse bench intermediate CA", mid_key, "Gatehouse bench root CA", root_key, True, 3650)
    leaf = issue("127.0.0.1", leaf_key, "Gatehouse bench intermediate CA", mid_key, False, 365, extra=(
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
    ))
    pem = serialization.Encoding.PEM
    out["key"].write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    out["chain"].write_bytes(leaf.public_bytes(pem) + mid.public_bytes(pem))
    out["ca"].write_bytes(root.public_bytes(pem))
    return out


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, ssl.SSLError, OSError):
            pass


async def serve(d: Path, port: int, upstream: tuple[str, int]) -> None:
    files = certs(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files["chain"], files["key"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
    async with server:
        await server.serve_forever()


def main() -> None:
    d, port, upstream = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    host, _, up_port = upstream.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("the upstream must be a loopback address")
    asyncio.run(serve(d, port, (host, int(up_port))))


if __name__ == "__main__":
    main()
