/*
 * libmuls.so: counts the MULS instructions (Thumb, 16-bit encoding: the
 * Cortex-M0's only multiply) a qemu-system-arm guest executes between pairs
 * of YIELD hints, and prints "muls: N" to QEMU's log at each closing one.
 *
 *   gcc -O2 -shared -fPIC -o libmuls.so muls.c
 *   qemu-system-arm -machine microbit ... -plugin ./libmuls.so -d plugin ...
 *
 * QEMU counts instructions, not cycles; a Cortex-M0 built with the small
 * multiplier takes 32 cycles per MULS, so the count says where multiplying
 * costs. The `pow2` bin of benches/qemu brackets each measurement with YIELD
 * (a no-op there); benches/qemu/muls.sh runs it under this plugin.
 *
 * Debian ships QEMU's plugin loader but not qemu-plugin.h, so the few
 * declarations used are written here against the plugin API of QEMU 7.2
 * (version 1), as in insn.c. One guest CPU: the counters are not atomic.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t; /* only passed through */

enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };

typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);

/* Provided by QEMU. */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            vcpu_udata_cb cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);
void qemu_plugin_outs(const char *string);

PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t muls;
static uint64_t opened_at;
static int in_window;

static void on_yield(unsigned int vcpu_index, void *userdata)
{
    char line[64];
    (void)vcpu_index;
    (void)userdata;
    if (in_window) {
        snprintf(line, sizeof line, "muls: %" PRIu64 "\n", muls - opened_at);
        qemu_plugin_outs(line);
    } else {
        opened_at = muls;
    }
    in_window = !in_window;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *d = qemu_plugin_insn_data(insn);
        if (qemu_plugin_insn_size(insn) != 2)
            continue;
        uint16_t h = (uint16_t)(d[0] | (d[1] << 8));
        if ((h & 0xffc0) == 0x4340) /* MULS <Rdm>, <Rn>, <Rdm> */
            qemu_plugin_register_vcpu_insn_exec_inline(
                insn, QEMU_PLUGIN_INLINE_ADD_U64, &muls, 1);
        else if (h == 0xbf10) /* YIELD */
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_yield,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                      const qemu_info_t *info, int argc,
                                      char **argv)
{
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    return 0;
}
