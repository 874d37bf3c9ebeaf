#!/usr/bin/env python3
"""Splits classic pcap files into one file per packet, prefixed by flowpic's link-type byte
(0 Ethernet, 1 raw IP, 2 Linux SLL, 3 BSD loopback): the seeds of the `parser` fuzz target.

  pcap_packets.py OUT_DIR CAPTURE.pcap...      (pcapng files and unknown link types are skipped)
"""
import os
import struct
import sys

LINK = {1: 0, 12: 1, 14: 1, 101: 1, 228: 1, 229: 1, 113: 2, 0: 3, 108: 3}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n = 0
    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        if len(data) < 24:
            continue
        magic = data[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            end = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            end = ">"
        else:
            continue  # pcapng or not a capture
        dlt = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
        if dlt not in LINK:
            continue
        off = 24
        k = 0
        while off + 16 <= len(data) and k < 200:
            caplen = struct.unpack(end + "I", data[off + 8:off + 12])[0]
            pkt = data[off + 16:off + 16 + caplen]
            if len(pkt) != caplen:
                break
            with open(os.path.join(out, f"{os.path.basename(path)}-{k}"), "wb") as f:
                f.write(bytes([LINK[dlt]]) + pkt)
            off += 16 + caplen
            k += 1
            n += 1
    print(f"pcap_packets.py: {n} packets written to {out}")


if __name__ == "__main__":
    main()
