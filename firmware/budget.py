#!/usr/bin/env python3
"""Flash and RAM use of the firmware ELF against the monitor's budgets, and
the CPU time and energy of one beat on each board.

Reads the section headers directly (no binutils needed):
  flash = .vector_table + .text + .rodata + .data (its load image)
  RAM   = .data + .bss + .uninit, plus the stack high-water mark when given
The .replay section (the replayed recording and the golden outputs: test
fixtures standing in for the front end and the oracle) is reported apart.

Usage:
  python3 budget.py [ELF] [--stack BYTES] [--model model/ecg.mq]
      the QEMU firmware against its 64 KiB / 16 KiB budgets
  python3 budget.py --board nrf52840|stm32f411 [ELF]
      a board binary (boards/<board>/target/.../release/medq-board-<board>)
      against its chip: flash and static RAM, and at least STACK_RESERVE
      bytes of RAM left for the stack
  python3 budget.py --power [--instructions N] [--pipeline-per-sample N] [--cpi C]
      the power table (see POWER below): CPU time, duty cycle and energy per
      beat on each board, from QEMU's instruction counts
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

# The boards' chips (their memory.x says the same).
BOARDS = {
    "nrf52840": {"chip": "nRF52840 (nRF52840_xxAA)", "flash": 1024 * 1024, "ram": 256 * 1024},
    "stm32f411": {"chip": "STM32F411CE", "flash": 512 * 1024, "ram": 128 * 1024},
}
# RAM a board binary must leave free for the stack (MSP: interrupt handlers
# and the code under the executor; the tasks' futures are in .bss). The QEMU
# firmware's measured high-water mark is 4,736 B; this is 3.4x that.
STACK_RESERVE = 16 * 1024
# Embedded in a board binary's .rodata beside the code.
BOARD_DATA = {
    "model": "model/ecg.mq",
    "boot self-test recording": "data/mitbih208.i16",
    "boot self-test golden outputs": "model/golden.bin",
}

# POWER: what one beat costs. The measured part is QEMU's exact instruction
# count (`cargo run --release` here: -icount shift=0, the same opt-level z
# build as the boards). The rest are assumptions or datasheet figures:
#
# MEASURED_INSTRUCTIONS: instructions per inference, the run's maximum over
#   the recording's 203 beats (633,040-633,080: one SysTick tick of spread;
#   the kernels do not branch on data, see README "Worst-case time").
# MEASURED_PIPELINE: detector + windowing instructions per input sample
#   (the run's "pipeline ... per sample": 29.1 M over 43,200 samples,
#   including cutting and resampling each beat's window). Measured at 360
#   Hz; the boards sample at 250 Hz, and the per-sample cost is assumed the
#   same (the filters' work is per sample, the windows' per beat).
# CPI: Cortex-M4 cycles per instruction. 1 for most data processing, 2 for
#   an unpipelined load, 1 + refill (1-3) for a taken branch, 1 for the
#   MAC/SIMD instructions of the DSP kernels; flash wait states are hidden by
#   the nRF52840's instruction cache and the STM32F411's ART accelerator
#   (prefetch + cache) on loops. Assumed 1.25 (range 1.0-1.5); the boards
#   print the measured cycles per inference (DWT cycle counter) at boot,
#   which replace this.
# RUN_UA_PER_MHZ, VOLTS: supply current while the CPU runs from flash.
#   nRF52840: 52 uA/MHz with the DC/DC regulator on (3.3 mA at 64 MHz, CPU
#     running CoreMark from flash, cache enabled), at 3.0 V: nRF52840
#     Product Specification v1.x, CPU chapter, electrical specification
#     (run current from flash, cache enabled, DC/DC). With the LDO instead of
#     the DC/DC it is about twice that.
#   STM32F411: 100 uA/MHz in Run mode with peripherals off, at 3.3 V:
#     DS10314 (STM32F411xC/xE datasheet), features page ("Dynamic
#     consumption: Run: 100 uA/MHz (peripheral off)") and its supply
#     current tables (Run mode, code from flash, ART accelerator on).
#   Neither figure was re-read for this table (no datasheet access here);
#   both match the commonly quoted values. Peripherals (SPI, GPIOTE/EXTI,
#   the ADS1292R itself: ~0.3-0.5 mW) and sleep current are not included:
#   this is the CPU's share of one beat.
MEASURED_INSTRUCTIONS = 633_080
MEASURED_PIPELINE = 673
CPI = (1.0, 1.25, 1.5)
POWER_BOARDS = [
    # name, clock Hz, sample rate Hz, uA/MHz, volts, source
    ("nRF52840", 64_000_000, 250, 52.0, 3.0, "nRF52840 PS v1.x, CPU run current, DC/DC"),
    ("STM32F411", 100_000_000, 250, 100.0, 3.3, "DS10314, Run mode, peripherals off"),
]
HEART_RATES = (60, 180)


def section_data(path):
    """{name: (addr, size, bytes)} of a 32-bit little-endian ELF's sections
    (the bytes empty for NOBITS sections such as .bss)."""
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
    for name, typ, _flags, addr, off, size, *_ in heads:
        label = names[name:names.index(b"\0", name)].decode()
        out[label] = (addr, size, data[off:off + size] if typ != 8 else b"")
    return out


def sections(path):
    """{name: (addr, size)} of the ELF's sections."""
    return {name: (addr, size) for name, (addr, size, _) in section_data(path).items()}


def board_report(board, elf):
    """Flash and RAM of a board binary against its chip; True if it fits."""
    chip = BOARDS[board]
    s = sections(elf)
    size = lambda n: s.get(n, (0, 0))[1]
    flash = {n: size(n) for n in (".vector_table", ".text", ".rodata", ".data")}
    ram = {n: size(n) for n in (".data", ".bss", ".uninit")}
    flash_total = sum(flash.values())
    ram_static = sum(ram.values())
    ok = True
    print(f"{board} ({chip['chip']}): {os.path.relpath(elf, HERE)}")
    print(f"flash: {flash_total} of {chip['flash']} bytes ({100 * flash_total / chip['flash']:.1f} %)")
    for n, v in flash.items():
        print(f"  {n:14} {v:7}")
    for what, path in BOARD_DATA.items():
        full = os.path.join(HERE, path)
        if os.path.isfile(full):
            print(f"  of which {what}: {os.path.getsize(full)} ({path})")
    if flash_total > chip["flash"]:
        ok = False
        print(f"  OVER by {flash_total - chip['flash']} bytes")
    free = chip["ram"] - ram_static
    print(f"RAM: {ram_static} of {chip['ram']} bytes static ({100 * ram_static / chip['ram']:.1f} %):"
          f" data {ram['.data']} + bss {ram['.bss']} + uninit {ram['.uninit']};"
          f" {free} left for the stack (at least {STACK_RESERVE} required)")
    if free < STACK_RESERVE:
        ok = False
        print(f"  OVER by {STACK_RESERVE - free} bytes")
    return ok


def power_table(instructions, pipeline_per_sample, cpi=None):
    """The CPU time, duty cycle and energy of one beat, as Markdown.
    `cpi` replaces the assumed CPI (e.g. a board's measured cycles per
    inference over `instructions`)."""
    lo, mid, hi = CPI if cpi is None else (cpi, cpi, cpi)
    cpi_note = f"CPI {mid} assumed (range {lo}-{hi})" if cpi is None else f"CPI {cpi} given"
    print(f"Inference: {instructions:,} instructions per beat (QEMU, measured); pipeline:"
          f" {pipeline_per_sample} instructions per sample (measured); {cpi_note}.")
    print()
    print("| board | clock | inference per beat | duty cycle at 60 bpm | at 180 bpm"
          " | energy per beat | CPU average at 60 / 180 bpm | run current (source) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, hz, fs, ua_mhz, volts, source in POWER_BOARDS:
        t_lo, t_mid, t_hi = (instructions * c / hz for c in (lo, mid, hi))
        # I = k * f with k in A/Hz: energy = k * V * cycles, whatever the clock.
        joule_per_cycle = ua_mhz * 1e-6 / 1e6 * volts
        e_inf = instructions * mid * joule_per_cycle
        duty = {}
        e_beat = {}
        for bpm in HEART_RATES:
            period = 60.0 / bpm
            pipeline = pipeline_per_sample * fs * period
            duty[bpm] = (t_mid + pipeline * mid / hz) / period
            e_beat[bpm] = e_inf + pipeline * mid * joule_per_cycle
        avg = {bpm: e_beat[bpm] * bpm / 60.0 for bpm in HEART_RATES}
        print(f"| {name} | {hz / 1e6:.0f} MHz | {t_mid * 1e3:.2f} ms ({t_lo * 1e3:.2f}-{t_hi * 1e3:.2f})"
              f" | {100 * duty[60]:.2f} % (inference {100 * t_mid:.2f} %)"
              f" | {100 * duty[180]:.2f} % (inference {100 * t_mid * 3:.2f} %)"
              f" | {e_inf * 1e6:.0f} uJ inference; {e_beat[60] * 1e6:.0f} / {e_beat[180] * 1e6:.0f} uJ"
              f" with the pipeline at 60 / 180 bpm"
              f" | {avg[60] * 1e6:.0f} / {avg[180] * 1e6:.0f} uW"
              f" | {ua_mhz:g} uA/MHz at {volts:g} V ({source}) |")
    print()
    print("Duty cycle and average include the pipeline (detector + windows, at 250 samples/s);"
          " times in parentheses are CPI 1.0-1.5.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("elf", nargs="?", default=None)
    ap.add_argument("--stack", type=int, help="stack high-water mark in bytes (printed by the firmware)")
    ap.add_argument("--model", default=os.path.join(HERE, "model/ecg.mq"))
    ap.add_argument("--board", choices=sorted(BOARDS), help="check a board binary against its chip")
    ap.add_argument("--power", action="store_true", help="print the power table of one beat")
    ap.add_argument("--instructions", type=int, default=MEASURED_INSTRUCTIONS,
                    help="instructions per inference (the QEMU run's max)")
    ap.add_argument("--pipeline-per-sample", type=int, default=MEASURED_PIPELINE,
                    help="pipeline instructions per sample (the QEMU run's)")
    ap.add_argument("--cpi", type=float,
                    help="cycles per instruction instead of the assumed range"
                         " (a board's logged cycles per inference / --instructions)")
    args = ap.parse_args()
    if args.power:
        power_table(args.instructions, args.pipeline_per_sample, args.cpi)
        return
    if args.board:
        elf = args.elf or os.path.join(
            HERE, f"boards/{args.board}/target/thumbv7em-none-eabihf/release/medq-board-{args.board}")
        sys.exit(0 if board_report(args.board, elf) else 1)
    if args.elf is None:
        args.elf = os.path.join(HERE, "target/thumbv7em-none-eabihf/release/medq-firmware")

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
