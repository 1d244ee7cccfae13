#!/usr/bin/env python3
"""st_edit.py: build the hostile inputs of tests/hostile/writers.rows (standard library only).

  st_edit.py drop SRC DST NAME[,NAME...]   copy safetensors SRC to DST without those tensors
  st_edit.py junk DST N                    a safetensors file of N unrelated F32 [1] tensors
  st_edit.py cfg SRC DST KEY=JSON...       copy config JSON SRC to DST with keys replaced
"""
import json
import struct
import sys


def read_st(path):
    with open(path, 'rb') as f:
        b = f.read()
    n = struct.unpack('<Q', b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, header, data):
    hb = json.dumps(header, separators=(',', ':')).encode()
    hb += b' ' * (-len(hb) % 8)  # padded to 8 as the safetensors library writes it
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + data)


def drop(src, dst, names):
    header, data = read_st(src)
    out, parts, at = {}, [], 0
    for k, v in header.items():
        if k == '__metadata__':
            out[k] = v
            continue
        if k in names:
            continue
        s, e = v['data_offsets']
        parts.append(data[s:e])
        out[k] = dict(v, data_offsets=[at, at + e - s])
        at += e - s
    write_st(dst, out, b''.join(parts))


def junk(dst, n):
    header = {'junk.%d' % i: {'dtype': 'F32', 'shape': [1], 'data_offsets': [4 * i, 4 * i + 4]}
              for i in range(n)}
    write_st(dst, header, bytes(4 * n))


def cfg(src, dst, pairs):
    with open(src) as f:
        c = json.load(f)
    for p in pairs:
        k, v = p.split('=', 1)
        c[k] = json.loads(v)
    with open(dst, 'w') as f:
        json.dump(c, f, indent=1)


def main(argv):
    if argv[1] == 'drop':
        drop(argv[2], argv[3], set(argv[4].split(',')))
    elif argv[1] == 'junk':
        junk(argv[2], int(argv[3]))
    elif argv[1] == 'cfg':
        cfg(argv[2], argv[3], argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
