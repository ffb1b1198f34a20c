#!/usr/bin/env python3
"""Structured mutations of Parquet headers, read by `ember data stats` one process each.

libFuzzer's byte mutations rarely produce a Thrift header that still parses with one field set
to an extreme value; this script does that on purpose. For each valid Parquet file given, it
sets every integer field of the footer (FileMetaData, row groups, column chunks) and of every
page header to extreme values (-1, -2^31, 2^31-1, 2^62, ...), one field at a time, re-encodes
the Thrift (compact protocol), shifts what follows and fixes the footer's offsets and sizes so
the file stays consistent, then runs `ember data stats` on it. A run that ends in a signal
(an abort: polars' failed allocations), prints "memory allocation", or takes over 30 s is a
finding, kept under --out.

    python3 crates/ember-data/fuzz/header_mutations.py target/release/ember \
        crates/ember-data/fuzz/corpus/parquet/* --out /tmp/header-findings

Files that are not readable Parquet to begin with are skipped. It found the negative
`num_values` of crates/ember-data/tests/data/parquet-aborts/.
"""
import argparse
import copy
import os
import struct
import subprocess
import tempfile


# --- Thrift compact protocol: enough to read and rewrite Parquet headers ---------------------

def read_varint(b, i):
    value = shift = 0
    while True:
        x = b[i]
        i += 1
        value |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return value, i


def varint(n):
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def unzigzag(n):
    return (n >> 1) ^ -(n & 1)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def read_value(b, i, t):
    if t in (1, 2):
        return t == 1, i
    if t == 3:
        return b[i], i + 1
    if t in (4, 5, 6):
        v, i = read_varint(b, i)
        return unzigzag(v), i
    if t == 7:
        return b[i:i + 8], i + 8
    if t == 8:
        n, i = read_varint(b, i)
        return b[i:i + n], i + n
    if t in (9, 10):
        h = b[i]
        i += 1
        n, elem = h >> 4, h & 15
        if n == 15:
            n, i = read_varint(b, i)
        items = []
        for _ in range(n):
            if elem in (1, 2):
                items.append(b[i] == 1)
                i += 1
            else:
                v, i = read_value(b, i, elem)
                items.append(v)
        return ("list", elem, items), i
    if t == 11:
        n, i = read_varint(b, i)
        if n == 0:
            return ("map", 0, 0, []), i
        kt, vt = b[i] >> 4, b[i] & 15
        i += 1
        pairs = []
        for _ in range(n):
            k, i = read_value(b, i, kt)
            v, i = read_value(b, i, vt)
            pairs.append((k, v))
        return ("map", kt, vt, pairs), i
    if t == 12:
        return read_struct(b, i)
    raise ValueError(f"thrift type {t} at byte {i}")


def read_struct(b, i):
    """A struct as a list of [field id, type, value]."""
    fields, last = [], 0
    while True:
        h = b[i]
        i += 1
        if h == 0:
            return fields, i
        t, delta = h & 15, h >> 4
        if delta:
            fid = last + delta
        else:
            v, i = read_varint(b, i)
            fid = unzigzag(v)
        v, i = read_value(b, i, t)
        fields.append([fid, t, v])
        last = fid


def write_value(t, v):
    if t in (1, 2):
        return b""
    if t == 3:
        return bytes([v])
    if t in (4, 5, 6):
        return varint(zigzag(v))
    if t == 7:
        return bytes(v)
    if t == 8:
        return varint(len(v)) + bytes(v)
    if t in (9, 10):
        _, elem, items = v
        n = len(items)
        out = bytearray([(n << 4 | elem) if n < 15 else (0xF0 | elem)])
        if n >= 15:
            out += varint(n)
        for x in items:
            out += bytes([1 if x else 2]) if elem in (1, 2) else write_value(elem, x)
        return bytes(out)
    if t == 11:
        _, kt, vt, pairs = v
        if not pairs:
            return b"\x00"
        out = bytearray(varint(len(pairs))) + bytes([kt << 4 | vt])
        for k, x in pairs:
            out += write_value(kt, k) + write_value(vt, x)
        return bytes(out)
    if t == 12:
        return write_struct(v)


def write_struct(fields):
    out, last = bytearray(), 0
    for fid, t, v in fields:
        wire = (1 if v else 2) if t in (1, 2) else t
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | wire)
        else:
            out.append(wire)
            out += varint(zigzag(fid))
        out += write_value(t, v)
        last = fid
    out.append(0)
    return bytes(out)


def field(fields, fid):
    return next((f for f in fields if f[0] == fid), None)


# --- Parquet structure ---------------------------------------------------------------------

EXTREMES = {3: [255], 4: [32767, -1], 5: [2**31 - 1, -1, 2**28, -2**31, 0], 6: [2**62, 2**40, -1, 2**31]}


def integer_leaves(fields, path=()):
    """Paths to every integer field, through nested structs and lists of structs."""
    for k, (_, t, v) in enumerate(fields):
        if t in EXTREMES:
            yield path + (k,), t
        elif t == 12:
            yield from integer_leaves(v, path + (k,))
        elif t in (9, 10) and v[1] == 12:
            for j, s in enumerate(v[2]):
                yield from integer_leaves(s, path + (k, j))


def set_leaf(fields, path, value):
    node, i = fields, 0
    while i < len(path) - 1:
        f = node[path[i]]
        if f[1] == 12:
            node, i = f[2], i + 1
        else:
            node, i = f[2][2][path[i + 1]], i + 2
    node[path[-1]][2] = value


def footer(data):
    if data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        raise ValueError("no PAR1 magic")
    n = struct.unpack("<I", data[-8:-4])[0]
    start = len(data) - 8 - n
    meta, end = read_struct(data, start)
    if end != len(data) - 8:
        raise ValueError("footer does not end where its length says")
    return start, meta


def with_footer(body, meta):
    f = write_struct(meta)
    return body + f + struct.pack("<I", len(f)) + b"PAR1"


def chunks(meta):
    for group in field(meta, 4)[2][2]:
        for chunk in field(group, 1)[2][2]:
            yield chunk, field(chunk, 3)[2]


def chunk_start(cmd):
    return min(v for fid, _, v in cmd if fid in (9, 11))  # dictionary or first data page


def pages(data, cmd):
    i, end = chunk_start(cmd), chunk_start(cmd) + field(cmd, 7)[2]
    while i < end:
        header, j = read_struct(data, i)
        yield i, j, header
        i = j + field(header, 3)[2]  # compressed_page_size


def shifted(meta, at, delta):
    """The footer after `delta` bytes were inserted at `at` (inside a column chunk)."""
    meta = copy.deepcopy(meta)
    for chunk, cmd in chunks(meta):
        start, size = chunk_start(cmd), field(cmd, 7)
        if start <= at < start + size[2]:
            size[2] += delta
        for f in cmd:
            if f[0] in (9, 10, 11) and f[2] > at:  # page offsets
                f[2] += delta
        offset = field(chunk, 2)
        if offset and offset[2] > at:
            offset[2] += delta
    return meta


def mutants(data):
    start, meta = footer(data)
    for path, t in list(integer_leaves(meta)):
        for value in EXTREMES[t]:
            m = copy.deepcopy(meta)
            set_leaf(m, path, value)
            yield f"footer {path} = {value}", with_footer(data[:start], m)
    for _, cmd in list(chunks(meta)):
        for i, j, header in list(pages(data, cmd)):
            for path, t in list(integer_leaves(header)):
                for value in EXTREMES[t]:
                    h = copy.deepcopy(header)
                    set_leaf(h, path, value)
                    new = write_struct(h)
                    body = data[:i] + new + data[j:start]
                    yield (f"page at {i} {path} = {value}",
                           with_footer(body, shifted(meta, i, len(new) - (j - i))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ember")
    p.add_argument("files", nargs="+")
    p.add_argument("--out", default="header-findings")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp()
    path, config = os.path.join(work, "in.parquet"), os.path.join(work, "c.toml")
    with open(config, "w") as c:
        c.write(f'[data]\nformat = "parquet"\npath = "{path}"\nuser = "user"\nitem = "item"\n'
                'rating = "rating"\ntimestamp = "timestamp"\n')

    def run(data):
        with open(path, "wb") as f:
            f.write(data)
        try:
            r = subprocess.run([args.ember, "data", "stats", "--config", config],
                               capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            return "timeout", ""
        return r.returncode, r.stderr.decode(errors="replace")

    tried = findings = 0
    for name in args.files:
        data = open(name, "rb").read()
        try:
            footer(data)
        except (ValueError, IndexError):
            continue
        if run(data)[0] != 0:
            continue  # only files ember reads are mutated
        for what, mutant in mutants(data):
            rc, err = run(mutant)
            tried += 1
            if rc == "timeout" or rc < 0 or "memory allocation" in err:
                findings += 1
                out = os.path.join(args.out, f"finding-{findings}.parquet")
                with open(out, "wb") as f:
                    f.write(mutant)
                print(f"{os.path.basename(name)}: {what}: exit {rc}: "
                      f"{(err.strip().splitlines() or [''])[0][:160]} -> {out}", flush=True)
    print(f"{tried} mutants, {findings} findings")


if __name__ == "__main__":
    main()
