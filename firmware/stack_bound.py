#!/usr/bin/env python3
"""A static upper bound on the firmware's stack, from its ELF.

  python3 stack_bound.py [ELF] [--top N] [--ram BYTES] [--measured BYTES]

How (the method of tools such as `cargo-call-stack`, on the disassembly
instead of the LLVM IR, so that it runs on stable Rust):

- Each function's frame is the sum of every stack-pointer decrement in its
  body: `push`/`stmdb sp!` (4 bytes a register), `vpush` (4 or 8 a register),
  pre-indexed stores (`str r11, [sp, #-4]!`) and `sub sp, #N`. Summing them all, not only the prologue's, can only
  overstate it. A decrement by a register (a dynamic `alloca`) has no
  static size: the script then fails, naming the function.
- Calls are `bl`/`blx` to a symbol and branches (`b`, `b.w`) into another
  function (tail calls, counted as nested calls: an overstatement again).
- An indirect call (`blx rN`, or `bx rN` other than `bx lr`) may reach any
  function whose address the image holds (`addr | 1` as an aligned word in
  `.text`, `.rodata` or `.data`: literal pools, vtables, the kernel tables),
  which overstates it once more.
- The bound is the deepest path from the reset handler, plus, for every other handler
  in the vector table, its own deepest path and the 104-byte exception frame
  of a Cortex-M4F with the FPU in use (as if every handler could preempt at
  once: another overstatement). Direct recursion (a cycle of direct calls)
  has no static bound: the script then fails and prints the cycle. A call
  through a pointer is assumed not to recurse: its edges into its own
  strongly connected component are dropped (without that, `core::fmt`'s
  `write_fmt`, which calls the `Write` it was given, would seem to call
  every formatting function, itself included).

`--ram 16384` fails unless the bound fits in the RAM that the statics leave
(`../test.sh` runs it so); `--measured N` fails if a measured high-water
mark (the firmware prints it) exceeds the bound, which would prove the
analysis wrong.
"""
import argparse
import re
import struct
import subprocess
import sys

from budget import section_data

EXCEPTION_FRAME = 104  # 8 words + 18 FP words (S0-S15, FPSCR, reserved)

FUNC_RE = re.compile(r"^([0-9a-f]+) <(.+)>:$")
INSN_RE = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")
TARGET_RE = re.compile(r"^(?:0x)?([0-9a-f]+)\s*<([^>+]+)(\+0x[0-9a-f]+)?>")


def disassemble(path):
    """{name: (start, [(mnemonic, operands)])} from llvm-objdump."""
    text = subprocess.run(
        ["llvm-objdump", "-d", "--no-show-raw-insn", path],
        check=True, capture_output=True, text=True,
    ).stdout
    funcs, current = {}, None
    for line in text.splitlines():
        m = FUNC_RE.match(line)
        if m:
            current = m.group(2)
            funcs[current] = (int(m.group(1), 16), [])
            continue
        m = INSN_RE.match(line)
        if m and current is not None:
            funcs[current][1].append((m.group(2), m.group(3)))
    return funcs


def reg_count(operands):
    """Registers in a `{r4-r7, lr}` / `{d8-d15}` list."""
    body = operands[operands.index("{") + 1:operands.index("}")]
    n = 0
    for part in body.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            n += int(re.sub(r"\D", "", b)) - int(re.sub(r"\D", "", a)) + 1
        elif part:
            n += 1
    return n


def analyse(funcs):
    """(frame bytes, direct callees, makes indirect calls) per function."""
    by_name = {name: start for name, (start, _) in funcs.items()}
    info = {}
    for name, (_, insns) in funcs.items():
        frame, callees, indirect = 0, set(), False
        for mnem, ops in insns:
            base = mnem.split(".")[0]
            pre_indexed = re.search(r"\[sp, #-(\d+)\]!", ops)
            if pre_indexed:  # str r11, [sp, #-4]!: a one-register push
                frame += int(pre_indexed.group(1))
            elif base == "push" or (base.startswith("stmdb") and ops.startswith("sp!")):
                frame += 4 * reg_count(ops)
            elif base == "vpush":
                width = 8 if "{d" in ops else 4
                frame += width * reg_count(ops)
            elif base in ("sub", "subw") and re.match(r"sp,\s*(sp,\s*)?#", ops):
                frame += int(re.search(r"#(\d+)", ops).group(1))
            elif base in ("sub", "subw") and re.match(r"sp,\s*(sp,\s*)?r", ops):
                sys.exit(f"stack_bound: {name} moves sp by a register (dynamic size)")
            elif base in ("bl", "blx", "b") or mnem in ("b.w",):
                m = TARGET_RE.match(ops)
                if m:
                    target = m.group(2)
                    if target != name and target in by_name and (base != "b" or not m.group(3)):
                        # a call, or a branch to another function's start
                        callees.add(target)
                elif base in ("blx",) and ops.startswith("r"):
                    indirect = True
            elif base.startswith("bx") and ops.strip() != "lr":
                indirect = True
        info[name] = (frame, callees, indirect)
    return info


def address_taken(funcs, secs):
    """Functions whose `addr | 1` is an aligned word of the image."""
    starts = {start | 1: name for name, (start, _) in funcs.items()}
    taken = set()
    for label in (".text", ".rodata", ".data"):
        if label not in secs:
            continue
        addr, _, data = secs[label]
        first = (4 - addr % 4) % 4
        for off in range(first, len(data) - 3, 4):
            word, = struct.unpack_from("<I", data, off)
            if word in starts:
                taken.add(starts[word])
    return taken


def call_graph(info, indirect_targets):
    """Edges of every function: its direct callees, and every address-taken
    function if it calls through a pointer, except those in its own
    strongly connected component (no recursion through a pointer, the
    stated assumption). Exits if direct calls still form a cycle."""
    full = {
        name: set(callees) | (indirect_targets if indirect else set())
        for name, (_, callees, indirect) in info.items()
    }
    comp = components(full)
    edges = {}
    for name, (_, callees, indirect) in info.items():
        through_pointer = {t for t in indirect_targets if comp[t] != comp[name]} if indirect else set()
        edges[name] = set(callees) | through_pointer
    comp = components(edges)
    sizes = {}
    for c in comp.values():
        sizes[c] = sizes.get(c, 0) + 1
    for name, targets in edges.items():
        if sizes[comp[name]] > 1 or name in targets:
            cycle = sorted(n for n in comp if comp[n] == comp[name])
            sys.exit("stack_bound: recursion, no static bound: " + ", ".join(cycle))
    return edges


def components(edges):
    """Tarjan's strongly connected components: {function: component id}."""
    index, low, comp, stack, on_stack = {}, {}, {}, [], set()
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp[w] = v
                if w == v:
                    break

    sys.setrecursionlimit(100000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return comp


def deepest(name, info, edges, memo):
    """The deepest stack below `name` (its frame included), and the path
    (`edges` is acyclic)."""
    if name in memo:
        return memo[name]
    best, best_path = 0, []
    for callee in sorted(edges[name]):
        depth, sub = deepest(callee, info, edges, memo)
        if depth > best:
            best, best_path = depth, sub
    memo[name] = (info[name][0] + best, [name] + best_path)
    return memo[name]


def vector_handlers(funcs, secs):
    """The handler functions of the vector table, the reset handler first."""
    if ".vector_table" not in secs:
        sys.exit("stack_bound: no .vector_table section")
    _, _, data = secs[".vector_table"]
    starts = {start | 1: name for name, (start, _) in funcs.items()}
    handlers = []
    for off in range(4, len(data) - 3, 4):  # word 0 is the initial SP
        word, = struct.unpack_from("<I", data, off)
        name = starts.get(word)
        if name and name not in handlers:
            handlers.append(name)
    return handlers


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("elf", nargs="?", default="target/thumbv7em-none-eabihf/release/medq-firmware")
    ap.add_argument("--top", type=int, default=12, help="frames of the deepest path to print")
    ap.add_argument("--ram", type=int,
                    help="RAM bytes: fail unless the bound fits what .data, .bss and .uninit leave")
    ap.add_argument("--measured", type=int, help="a measured high-water mark, which must not exceed the bound")
    args = ap.parse_args()
    secs = section_data(args.elf)
    funcs = disassemble(args.elf)
    info = analyse(funcs)
    indirect_targets = address_taken(funcs, secs)
    handlers = vector_handlers(funcs, secs)
    if not handlers:
        sys.exit("stack_bound: the vector table names no function")
    edges = call_graph(info, indirect_targets)
    memo = {}
    total = 0
    for i, h in enumerate(handlers):
        depth, path = deepest(h, info, edges, memo)
        extra = 0 if i == 0 else EXCEPTION_FRAME
        total += depth + extra
        label = f"from reset ({h})" if i == 0 else f"handler {h} (+{EXCEPTION_FRAME} B exception frame)"
        print(f"{label}: {depth + extra} B")
        if i == 0:
            for name in path[: args.top]:
                print(f"  {info[name][0]:6d} B  {name}")
    print(f"static stack bound: {total} B ({len(funcs)} functions, "
          f"{len(indirect_targets)} reachable through a pointer, {len(handlers)} handlers)")
    if args.measured is not None and args.measured > total:
        sys.exit(f"stack_bound: measured {args.measured} B exceeds the bound {total} B: the analysis is wrong")
    if args.ram is not None:
        static = sum(secs[n][1] for n in (".data", ".bss", ".uninit") if n in secs)
        left = args.ram - static
        print(f"RAM {args.ram} B - static {static} B = {left} B for the stack: "
              f"{'fits' if total <= left else 'DOES NOT FIT'} ({left - total} B spare)")
        if total > left:
            sys.exit(f"stack_bound: the bound {total} B exceeds the {left} B left for the stack")


if __name__ == "__main__":
    main()
