#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ from the repository's testdata.

Run from the repository root: python3 fuzz/seeds.py. The seeds are
committed; this script says where each came from and remakes them. Each
target's input format is documented in src/fuzzing.rs.
"""
import hashlib, json, os, pathlib, re, struct, sys

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "fuzz" / "corpus"

def put(target, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    (d / name).write_bytes(data)

# policy: flags byte, line, optionally NUL + policy TOML.
cases = (root / "testdata/policy/default.cases.toml").read_text()
lines = re.findall(r"^line = '(.*)'$", cases, re.M) + [json.loads(l) for l in re.findall(r'^line = (".*")$', cases, re.M)]
for i, line in enumerate(lines[::3]):
    put("policy", bytes([0x20 if i % 2 else 0x00]) + line.encode())
for path in ["testdata/policy/policy.example.toml", "defaults/policy.toml"]:
    text = (root / path).read_bytes()
    put("policy", b"\x00rm -rf /var/lib/x\x00" + text)
    put("policy", b"\x21sudo -u root bash -c 'systemctl stop db'\x00" + text)

# mask: shape byte (rows, cols), split byte, terminal bytes.
for p in sorted((root / "testdata/mask").glob("*.txt")):
    put("mask", b"\x5a\x3f" + p.read_bytes().replace(b"\n", b"\r\n"))

# chunk: the test vectors' chunks, and a cast as a payload to seal.
chunks = sorted((root / "testdata/evidence/01930000-0000-7000-8000-000000000001").glob("*.chunk"))
for p in chunks:
    put("chunk", p.read_bytes())

casts = [root / "testdata/evidence/session.cast", root / "testdata/replay/asciinema2.cast",
         root / "testdata/replay/asciinema3.cast", root / "testdata/golden/hello.cast"]
vectors = json.loads((root / "testdata/evidence/vectors.json").read_text())
pieces = [c["cast_text"].encode() for c in vectors["chunks"]]

# chain and ingest: op-coded chunk sequences (see `chunks` in src/fuzzing.rs):
# op, first_us delta, last_us delta, cast length, cast bytes.
def op_chunk(op, cast, extra=b""):
    cast = cast[:255]
    return bytes([op]) + extra + bytes([1, 5, len(cast)]) + cast

def chain_of(ops):
    return b"".join(op_chunk(op, pieces[i % len(pieces)]) for i, op in enumerate(ops))

for ops in ([0, 0, 0, 8], [0, 8], [8], [0, 0x40, 8], [0, 0x10, 8], [0, 0, 0, 0], [0, 4, 8]):
    put("chain", b"\x00" + chain_of(ops)[:1000])
    put("ingest", b"\x00" + chain_of(ops)[:1000])
put("chain", b"\x01" + chain_of([0, 0, 8]))
put("chain", b"\x00" + op_chunk(2, pieces[0], b"\x05") + op_chunk(3, pieces[1], b"\x00"))
put("ingest", b"\xff" + chain_of([0, 8]))
put("ingest", b"\x02" + chain_of([0, 0, 8]))
put("ingest", b"\x00\x80\x40" + chunks[0].read_bytes()[:128])

# asciicast and replay_index: the recordings, whole and as chunk payloads.
for p in casts:
    put("asciicast", p.read_bytes())
    put("replay_index", p.read_bytes())
for piece in pieces:
    put("asciicast", piece)
put("replay_index", pieces[0] + b'[0.5, "r", "20x5"]\n[0.1, "o", "\\u001b[?1049hfull\\r\\nscreen"]\n[2, "o", "\\u001b[?1049lback"]\n')
