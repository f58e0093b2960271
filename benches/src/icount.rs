//! Reads the output of the Cortex-M4 `icount` binary (`benches/qemu`).
//!
//! Two forms are understood, so the parser survives changes of the table:
//!
//! - machine-readable lines: a JSON object anywhere on a line (after any
//!   prefix, e.g. `ICOUNT {"layer": ..., "macs": ..., ...}`) with a `layer`
//!   string and a `macs` number, and the kernel's instructions per MAC as
//!   `instr_per_mac` (or `dsp_instr_per_mac`, `medq_instr_per_mac`, or
//!   `instructions` / `dsp_instructions` divided by `macs`); a number under a
//!   key containing `cmsis` is CMSIS-NN's instructions per MAC (`null`: no
//!   cited figure), one under `reference_instr_per_mac` (or
//!   `ref_instr_per_mac`, `ref_instructions`) the reference kernel's, and a
//!   `kernel` string names the kernel medq dispatched.
//!   When any such line is present, only those lines count.
//! - the human table: `name MACs ref_instr ref/MAC dsp_instr dsp/MAC
//!   speedup"x" [cmsis/MAC] [notes]`, read from the right of the name.
//!
//! Summary rows (a name containing "total") are not layers and are skipped.

use serde_json::{Map, Value};

use crate::results::CortexM4Row;

/// Every layer row in `output`.
pub fn parse(output: &str) -> Vec<CortexM4Row> {
    let json: Vec<CortexM4Row> = output.lines().filter_map(json_row).collect();
    let rows = if json.is_empty() {
        output.lines().filter_map(table_row).collect()
    } else {
        json
    };
    rows.into_iter()
        .filter(|r| !r.layer.to_ascii_lowercase().contains("total"))
        .collect()
}

fn json_row(line: &str) -> Option<CortexM4Row> {
    let start = line.find('{')?;
    let end = line.rfind('}')?;
    let obj: Map<String, Value> = serde_json::from_str(line.get(start..=end)?).ok()?;
    let layer = obj.get("layer")?.as_str()?.to_string();
    let macs = obj.get("macs")?.as_u64().filter(|&m| m > 0)?;
    let num = |k: &str| obj.get(k).and_then(Value::as_f64);
    let per_mac = |per: &str, total: &str| num(per).or_else(|| num(total).map(|t| t / macs as f64));
    let instr_per_mac = per_mac("instr_per_mac", "instructions")
        .or_else(|| per_mac("dsp_instr_per_mac", "dsp_instructions"))
        .or_else(|| num("medq_instr_per_mac"))?;
    let cmsis = obj
        .iter()
        .find(|(k, v)| k.to_ascii_lowercase().contains("cmsis") && v.is_number())
        .and_then(|(_, v)| v.as_f64());
    Some(CortexM4Row {
        layer,
        macs,
        instr_per_mac,
        ref_instr_per_mac: num("reference_instr_per_mac")
            .or_else(|| per_mac("ref_instr_per_mac", "ref_instructions")),
        cmsis_nn_instr_per_mac: cmsis,
        kernel: obj
            .get("kernel")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn table_row(line: &str) -> Option<CortexM4Row> {
    // Tokens with their start offsets, so the name keeps its spacing.
    let mut tokens = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(|c: char| !c.is_whitespace()) {
        let start = line.len() - rest.len() + i;
        let tok_len = rest[i..]
            .find(char::is_whitespace)
            .unwrap_or(rest.len() - i);
        tokens.push((start, &line[start..start + tok_len]));
        rest = &rest[i + tok_len..];
    }
    // The speedup column ("3.41x") anchors the numeric columns before it.
    let s = tokens.iter().rposition(|(_, t)| {
        t.strip_suffix('x')
            .is_some_and(|v| v.parse::<f64>().is_ok())
    })?;
    if s < 6 {
        return None;
    }
    let int = |k: usize| tokens[k].1.parse::<u64>().ok();
    let float = |k: usize| tokens[k].1.parse::<f64>().ok();
    let macs = int(s - 5).filter(|&m| m > 0)?;
    let (_ref_instr, ref_per_mac) = (int(s - 4)?, float(s - 3)?);
    let (_dsp_instr, dsp_per_mac) = (int(s - 2)?, float(s - 1)?);
    let cmsis = tokens.get(s + 1).and_then(|(_, t)| t.parse::<f64>().ok());
    let layer = line[..tokens[s - 5].0].trim().to_string();
    if layer.is_empty() {
        return None;
    }
    Some(CortexM4Row {
        layer,
        macs,
        instr_per_mac: dsp_per_mac,
        ref_instr_per_mac: Some(ref_per_mac),
        cmsis_nn_instr_per_mac: cmsis,
        kernel: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "\
icount: Cortex-M4 (QEMU mps2-an386, -icount shift=0): 40 instructions per SysTick tick, 10 runs per measurement; DSP kernels on
layer                                MACs  ref instr  ref/MAC  DSP instr  DSP/MAC speedup
Conv1d 1->16 k7 /140                15680     151840     9.68      61020     3.89   2.49x
Conv1d 16->32 k5 /70               179200    1431360     7.99     520380     2.90   2.75x
FC 32->5                              160       2240    14.00        980     6.13   2.29x  OUTPUT MISMATCH
ECG model conv+FC total            195040    1585440     8.13     582380     2.99   2.72x
";

    #[test]
    fn reads_todays_table_and_skips_the_header_and_the_total() {
        let rows = parse(TODAY);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(
            rows[0],
            CortexM4Row {
                layer: "Conv1d 1->16 k7 /140".into(),
                macs: 15680,
                instr_per_mac: 3.89,
                ref_instr_per_mac: Some(9.68),
                cmsis_nn_instr_per_mac: None,
                kernel: None,
            }
        );
        assert_eq!(rows[2].layer, "FC 32->5");
        assert_eq!(rows[2].instr_per_mac, 6.13);
    }

    #[test]
    fn a_column_after_the_speedup_is_cmsis_nn() {
        let rows = parse(
            "(cmsis) Conv1d 16->32 k5 /140  358400  2866000  8.00  1003520  2.80  2.86x  2.40\n",
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].layer, "(cmsis) Conv1d 16->32 k5 /140");
        assert_eq!(rows[0].cmsis_nn_instr_per_mac, Some(2.40));
    }

    #[test]
    fn json_lines_win_over_the_table_and_accept_totals_or_ratios() {
        let out = format!(
            "{TODAY}ICOUNT {{\"layer\": \"FC 640->128\", \"macs\": 81920, \"instr_per_mac\": 2.1, \"cmsis_nn_instr_per_mac\": 1.95}}\n\
             row: {{\"layer\": \"DW 3x3 25x5x64\", \"macs\": 72000, \"dsp_instructions\": 720000, \"ref_instructions\": 1440000, \"cmsis\": 8.33}}\n\
             {{\"layer\": \"no macs\", \"instr_per_mac\": 1.0}}\n"
        );
        let rows = parse(&out);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].layer, "FC 640->128");
        assert_eq!(rows[0].instr_per_mac, 2.1);
        assert_eq!(rows[0].cmsis_nn_instr_per_mac, Some(1.95));
        assert_eq!(rows[0].ref_instr_per_mac, None);
        assert_eq!(rows[1].instr_per_mac, 10.0);
        assert_eq!(rows[1].ref_instr_per_mac, Some(20.0));
        assert_eq!(rows[1].cmsis_nn_instr_per_mac, Some(8.33));
    }

    #[test]
    fn reads_the_cortex_m4_json_lines_with_cited_figures_and_kernels() {
        let out = "\
layer  MACs  ref instr  ref/MAC  DSP instr  DSP/MAC speedup  CMSIS-NN  DSP kernel
Conv1d 16->32 k5 /140   358400  2866000  8.00  1003520  2.80  2.86x  2.40  conv_s8_dsp
cortex_m4 {\"layer\": \"Conv1d 16->32 k5 /140\", \"macs\": 358400, \"instr_per_mac\": 2.80, \"cmsis_nn_instr_per_mac\": 2.40, \"reference_instr_per_mac\": 8.00, \"kernel\": \"conv_s8_dsp\"}
cortex_m4 {\"layer\": \"FC 32->5\", \"macs\": 160, \"instr_per_mac\": 6.13, \"cmsis_nn_instr_per_mac\": null, \"reference_instr_per_mac\": 14.00, \"kernel\": \"fully_connected_s8_dsp\"}
";
        let rows = parse(out);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].cmsis_nn_instr_per_mac, Some(2.40));
        assert_eq!(rows[0].ref_instr_per_mac, Some(8.0));
        assert_eq!(rows[0].kernel.as_deref(), Some("conv_s8_dsp"));
        assert_eq!(rows[1].cmsis_nn_instr_per_mac, None);
        assert_eq!(rows[1].instr_per_mac, 6.13);
    }

    #[test]
    fn nothing_to_read_gives_no_rows() {
        assert!(parse("").is_empty());
        assert!(parse("error: qemu-system-arm not found\n").is_empty());
    }
}
