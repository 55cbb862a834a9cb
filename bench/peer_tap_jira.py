"""Singer's ``tap-jira`` (2.6.0, PyPI) against the same simulated site as our sync: ``--peer tap-jira``.

It gets its own virtualenv (cached in ``~/.cache/pmo-sync/tap-jira-venv``, so reruns are fast). tap-jira
forces https (``Client.url`` rewrites any base_url to https) and verifies with its venv's certifi bundle
(it sends prepared requests, so ``REQUESTS_CA_BUNDLE`` is not read): the simulator serves TLS with a
self-signed certificate for 127.0.0.1 whose PEM is appended to that bundle once. Config keys are those of
its basic-auth ("hosted") path: base_url, username, password, user_agent, start_date. The catalog is its
own ``--discover`` output with the ``issues`` and ``worklogs`` streams selected, passed as
``--properties``: tap-jira 2.6.0 reads ``args.properties`` only, and given ``--catalog`` it silently
re-discovers and syncs nothing. Requests are counted by the simulator; records are read from the Singer
RECORD messages on its stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.jira_server import Server

VERSION = "2.6.0"
CACHE = Path(os.environ.get("PMO_SYNC_CACHE", Path.home() / ".cache" / "pmo-sync"))
VENV = CACHE / "tap-jira-venv"
TLS = CACHE / "tap-jira-tls"


def ensure_venv() -> Path:
    """The tap's own venv with tap-jira==VERSION; installed once, from the package registry."""
    exe = VENV / "bin" / "tap-jira"
    marker = VENV / f".tap-jira-{VERSION}"
    if not (exe.exists() and marker.exists()):
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", f"tap-jira=={VERSION}"],
            check=True,
            capture_output=True,
        )
        marker.touch()
    return exe


def ensure_cert() -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography if importable, else the openssl CLI)."""
    cert, key = TLS / "cert.pem", TLS / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    TLS.mkdir(parents=True, exist_ok=True)
    try:
        _cert_with_cryptography(cert, key)
    except ImportError:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def _cert_with_cryptography(cert: Path, key: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    pk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    c = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pk.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(pk, hashes.SHA256())
    )
    key.write_bytes(
        pk.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))


def trust(cert: Path) -> None:
    """Append the certificate to the tap venv's certifi bundle, once."""
    where = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import certifi; print(certifi.where())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    bundle, pem = Path(where), cert.read_text()
    if pem not in bundle.read_text():
        with bundle.open("a") as f:
            f.write("\n# pmo-sync bench: the Jira simulator on 127.0.0.1\n" + pem)


def run_tap_jira(cfg: Any, workdir: Path, timeout: float = 3600) -> dict[str, Any]:
    """Run tap-jira (issues + worklogs) against a TLS simulator built from ``cfg``; its figures."""
    exe = ensure_venv()
    cert, key = ensure_cert()
    trust(cert)
    server = Server(replace(cfg, cert=cert, key=key))
    try:
        config = {
            "base_url": server.url,
            "username": cfg.email,
            "password": cfg.token,
            "user_agent": "pmo-sync-bench",
            "start_date": "1970-01-01T00:00:00Z",
            "request_timeout": 300,
        }
        conf = workdir / "tap-jira-config.json"
        conf.write_text(json.dumps(config))
        disc = subprocess.run(
            [str(exe), "--config", str(conf), "--discover"], capture_output=True, text=True, timeout=300
        )
        if disc.returncode != 0:
            return {"peer": "tap-jira", "error": "discover failed: " + disc.stderr[-800:]}
        catalog = json.loads(disc.stdout)
        for entry in catalog["streams"]:
            for m in entry["metadata"]:
                if m["breadcrumb"] == []:
                    m["metadata"]["selected"] = entry["tap_stream_id"] in ("issues", "worklogs")
        cat = workdir / "tap-jira-catalog.json"
        cat.write_text(json.dumps(catalog))
        server.ask("log")  # discovery's own requests are not the sync's
        server.ask("cold")
        out, err = workdir / "tap-jira.out", workdir / "tap-jira.err"
        t0 = time.perf_counter()
        with out.open("w") as so, err.open("w") as se:
            try:
                proc = subprocess.run(
                    [str(exe), "--config", str(conf), "--properties", str(cat)],  # not --catalog
                    stdout=so,
                    stderr=se,
                    timeout=timeout,
                )
                rc: int | str = proc.returncode
            except subprocess.TimeoutExpired:
                rc = f"timed out after {timeout:.0f} s"
        wall = time.perf_counter() - t0
        _, requests = server.ask("log")
        truth = server.ask("truth")
    finally:
        server.stop()
    issues: set[str] = set()
    worklogs: dict[str, int] = {}
    records = {"issues": 0, "worklogs": 0}
    with out.open() as f:
        for line in f:
            if not line.startswith('{"type": "RECORD"') and '"RECORD"' not in line[:40]:
                continue
            msg = json.loads(line)
            stream, rec = msg.get("stream"), msg.get("record") or {}
            if stream in records:
                records[stream] += 1
            if stream == "issues":
                issues.add(str(rec["id"]))
            elif stream == "worklogs":
                worklogs[str(rec["id"])] = int(rec.get("timeSpentSeconds") or 0)
    result: dict[str, Any] = {
        "peer": f"tap-jira {VERSION}",
        "exit": rc,
        "requests": requests,
        "wall_s": round(wall, 2),
        "issues": len(issues),
        "worklogs": len(worklogs),
        "worklog_seconds": sum(worklogs.values()),
        "records_emitted": records,
        "truth": truth,
    }
    if rc != 0:
        result["stderr_tail"] = err.read_text()[-1500:]
    return result


def notes(peer: dict[str, Any], ours: dict[str, int]) -> str:
    """Where the counts disagree, which side is right and why."""
    truth = peer.get("truth") or {}
    out = []
    for what in ("issues", "worklogs", "worklog_seconds"):
        p, o, t = peer.get(what), ours.get(what), truth.get(what)
        if p == o == t:
            continue
        right = [n for n, v in (("ours", o), ("tap-jira", p)) if v == t]
        out.append(f"{what}: ours {o}, tap-jira {p}, site {t} ({' and '.join(right) or 'neither'} right)")
    dupes = {k: v - peer.get(k, 0) for k, v in (peer.get("records_emitted") or {}).items()}
    if dupes.get("worklogs"):
        out.append(
            f"tap-jira emitted {dupes['worklogs']} worklog records twice: its worklog cursor is the last"
            " record's updated time cut to whole seconds and re-read with since <= (its loader must dedupe)"
        )
    if dupes.get("issues"):
        out.append(
            f"tap-jira emitted {dupes['issues']} issue records twice: pages ordered by updated with a"
            " minute-precision JQL cursor"
        )
    if not out:
        return "counts agree with the site"
    return "; ".join(out) + (
        ". Distinct counts and seconds agree with the site and with ours on this full run with no edits"
        " during it; tap-jira's cursor has no lookback, so an edit landing while it runs can be missed"
        " (its #109), and it waits a constant 60 s on 429 whatever Retry-After says"
        if all(
            peer.get(k) == (peer.get("truth") or {}).get(k) for k in ("issues", "worklogs", "worklog_seconds")
        )
        else ""
    )
    return "; ".join(out) or "counts agree with the site"
