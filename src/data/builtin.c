/* The built-in datasets, embedded in the library so that they need no file
 * at hand: data/digits.csv.gz (the UCI 8x8 optical digits, see
 * data/digits.rst) and data/breast_cancer.csv.gz (the UCI Breast Cancer
 * Wisconsin (Diagnostic) set, see data/breast_cancer.rst).
 *
 * .incbin resolves its path against the assembler's working directory, which
 * is the repository root because make always runs there; a build from
 * elsewhere passes -DCLIPNN_DIGITS_GZ='"/abs/path/digits.csv.gz"' and
 * -DCLIPNN_BREAST_CANCER_GZ='"/abs/path/breast_cancer.csv.gz"'. The Makefile
 * lists the .gz files as prerequisites of this object, so editing the data
 * rebuilds it. */
#include "data/data.h"

#ifndef CLIPNN_DIGITS_GZ
#define CLIPNN_DIGITS_GZ "data/digits.csv.gz"
#endif
#ifndef CLIPNN_BREAST_CANCER_GZ
#define CLIPNN_BREAST_CANCER_GZ "data/breast_cancer.csv.gz"
#endif

/* The file at path as the bytes [sym, sym_end) in .rodata, sym_end followed
 * by one 0 byte. pushsection/popsection put the assembler back in whatever
 * section the compiler was emitting to: a plain .section here would leave
 * code the compiler emits after this block (sanitizer constructors) in
 * .rodata. */
#define EMBED_FILE(sym, path)                                                                                        \
    __asm__(".pushsection .rodata\n"                                                                                 \
            ".balign 16\n"                                                                                           \
            ".globl " #sym "\n"                                                                                      \
            ".hidden " #sym "\n"                                                                                     \
            ".type " #sym ", @object\n" #sym ":\n"                                                                  \
            ".incbin \"" path "\"\n"                                                                                 \
            ".globl " #sym "_end\n"                                                                                  \
            ".hidden " #sym "_end\n"                                                                                 \
            ".type " #sym "_end, @object\n" #sym "_end:\n"                                                          \
            ".byte 0\n"                                                                                              \
            ".size " #sym ", " #sym "_end - " #sym "\n"                                                              \
            ".size " #sym "_end, 1\n"                                                                                \
            ".popsection\n")

EMBED_FILE(clipnn_digits_csv_gz, CLIPNN_DIGITS_GZ);
EMBED_FILE(clipnn_breast_cancer_csv_gz, CLIPNN_BREAST_CANCER_GZ);

/* The objects need no executable stack. */
__asm__(".pushsection .note.GNU-stack,\"\",@progbits\n"
        ".popsection\n");
