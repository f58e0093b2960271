#!/usr/bin/env python3
"""Flash and RAM use of the firmware ELF against the monitor's budgets.

Reads the section headers directly (no binutils needed):
  flash = .vector_table + .text + .rodata + .data (its load image)
  RAM   = .data + .bss + .uninit, plus the stack high-water mark when given
The .replay section (the replayed recording and the golden outputs: test
fixtures standing in for the front end and the oracle) is reported apart.

Usage: python3 budget.py [ELF] [--stack BYTES] [--model model/ecg.mq]
Exits 1 when a budget is exceeded. The linker enforces the same limits
(memory.x); this script says by how much and what is in them.
"""

import argparse
import os
import struct
import sys

FLASH_BUDGET = 64 * 1024
RAM_BUDGET = 16 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def sections(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        sys.exit(f"{path}: not a 32-bit little-endian ELF")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    heads = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = heads[shstrndx]
    names = data[strtab[4]:strtab[4] + strtab[5]]
    out = {}
    for h in heads:
        name = names[h[0]:names.index(b"\0", h[0])].decode()
        out[name] = (h[3], h[5])  # addr, size
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("elf", nargs="?", default=os.path.join(HERE, "target/thumbv7em-none-eabihf/release/medq-firmware"))
    ap.add_argument("--stack", type=int, help="stack high-water mark in bytes (printed by the firmware)")
    ap.add_argument("--model", default=os.path.join(HERE, "model/ecg.mq"))
    args = ap.parse_args()

    s = sections(args.elf)
    size = lambda n: s.get(n, (0, 0))[1]
    flash = {n: size(n) for n in (".vector_table", ".text", ".rodata", ".data")}
    ram = {n: size(n) for n in (".data", ".bss", ".uninit")}
    flash_total = sum(flash.values())
    ram_static = sum(ram.values())
    model = os.path.getsize(args.model) if os.path.isfile(args.model) else 0

    ok = True
    print(f"flash: {flash_total} of {FLASH_BUDGET} bytes ({100 * flash_total / FLASH_BUDGET:.1f} %)")
    for n, v in flash.items():
        print(f"  {n:14} {v:7}")
    if model:
        print(f"  of which model  {model:7} ({os.path.relpath(args.model, HERE)}, in .rodata)")
    if flash_total > FLASH_BUDGET:
        ok = False
        print(f"  OVER BUDGET by {flash_total - FLASH_BUDGET} bytes")
    ram_total = ram_static + (args.stack or 0)
    stack = f" + stack {args.stack}" if args.stack is not None else " (+ stack: pass --stack)"
    print(f"RAM: {ram_total} of {RAM_BUDGET} bytes: data {ram['.data']} + bss {ram['.bss']}"
          f" + uninit {ram['.uninit']}{stack}")
    if ram_total > RAM_BUDGET:
        ok = False
        print(f"  OVER BUDGET by {ram_total - RAM_BUDGET} bytes")
    print(f"fixtures (.replay, not budgeted): {size('.replay')} bytes")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
