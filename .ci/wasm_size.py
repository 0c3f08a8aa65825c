"""The browser's share, printed by .ci/wasm-size: sizes of the served files, raw and
gzipped (level 9, as a server or CDN would send them), and the code size per crate
of the unoptimised bundle, read from its code section and its `name` section."""
import gzip
import os
import re
import sys
from collections import Counter

TARGET_GZ = 400 * 1024


def leb(data, i):
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def sections(data):
    i = 8
    while i < len(data):
        sid = data[i]
        size, j = leb(data, i + 1)
        yield sid, data[j:j + size]
        i = j + size


def function_sizes(data):
    """(index of each defined function → body size), and function names."""
    imported = 0
    bodies = []
    names = {}
    for sid, body in sections(data):
        if sid == 2:  # imports: count the imported functions (they have no body)
            n, i = leb(body, 0)
            for _ in range(n):
                for _ in range(2):
                    length, i = leb(body, i)
                    i += length
                kind = body[i]
                i += 1
                if kind == 0:
                    _, i = leb(body, i)
                    imported += 1
                elif kind == 1:
                    i += 1
                    flags, i = leb(body, i)
                    _, i = leb(body, i)
                    if flags & 1:
                        _, i = leb(body, i)
                elif kind == 2:
                    flags, i = leb(body, i)
                    _, i = leb(body, i)
                    if flags & 1:
                        _, i = leb(body, i)
                elif kind == 3:
                    i += 2
                else:
                    raise ValueError(f"import kind {kind}")
        elif sid == 10:
            n, i = leb(body, 0)
            for _ in range(n):
                size, j = leb(body, i)
                bodies.append(size + (j - i))
                i = j + size
        elif sid == 0:
            length, i = leb(body, 0)
            if body[i:i + length] != b"name":
                continue
            i += length
            while i < len(body):
                sub = body[i]
                size, j = leb(body, i + 1)
                if sub == 1:
                    n, k = leb(body, j)
                    for _ in range(n):
                        idx, k = leb(body, k)
                        length, k = leb(body, k)
                        names[idx] = body[k:k + length].decode("utf-8", "replace")
                        k += length
                i = j + size
    return {imported + n: size for n, size in enumerate(bodies)}, names


def crate_of(name):
    """The crate a (legacy- or v0-mangled) Rust symbol belongs to; a trait impl
    (`<T as tachys::…>`) counts for the first crate its name mentions."""
    m = re.match(r"_ZN(\d+)", name)
    if m:
        segment = name[m.end():m.end() + int(m.group(1))]
        if segment.startswith("_$LT$"):
            inner = re.search(r"([a-z_][a-z0-9_]*)\.\.", segment)
            return inner.group(1) if inner else "(impls on std types)"
        return segment
    if name.startswith("_R"):
        m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)", name)
        if m:
            n, start = int(m.group(1)), m.end()
            return name[start:start + n]
    return "(no Rust name)"


def main():
    pkg, raw_wasm = sys.argv[1], sys.argv[2]
    print("the browser's share: the release build in target/site/pkg")
    print(f"{'file':<22} {'raw':>10} {'gzip -9':>10}")
    total_gz = 0
    for name in sorted(os.listdir(pkg)):
        if name == "timebox.wasm":
            continue  # a hard link to timebox_bg.wasm
        data = open(os.path.join(pkg, name), "rb").read()
        gz = len(gzip.compress(data, 9))
        total_gz += gz
        print(f"{name:<22} {len(data) / 1024:>8.0f} KB {gz / 1024:>7.0f} KB")
    verdict = "met" if total_gz <= TARGET_GZ else "MISSED"
    print(f"{'all':<22} {'':>10} {total_gz / 1024:>7.0f} KB   target ≤ 400 KB gzipped: {verdict}")
    if not os.path.exists(raw_wasm):
        return
    data = open(raw_wasm, "rb").read()
    sizes, names = function_sizes(data)
    if not names:
        print("(the unoptimised bundle has no name section: no breakdown)")
        return
    per_crate = Counter()
    for idx, size in sizes.items():
        per_crate[crate_of(names.get(idx, ""))] += size
    code = sum(sizes.values())
    print(f"\ncode per crate, before wasm-opt ({code / 1024:.0f} KB of functions in {raw_wasm.split('/target/')[-1]}):")
    for crate, size in per_crate.most_common(15):
        print(f"  {crate:<32} {size / 1024:>7.0f} KB  {100 * size / code:>5.1f} %")


if __name__ == "__main__":
    main()
