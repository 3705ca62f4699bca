/* The built-in dataset: data/digits.csv.gz (the UCI 8x8 optical digits, see
 * data/digits.rst) embedded in the library so that `clipnn train` works with
 * no file at hand.
 *
 * .incbin resolves its path against the assembler's working directory, which
 * is the repository root because make always runs there; a build from
 * elsewhere passes -DCLIPNN_DIGITS_GZ='"/abs/path/digits.csv.gz"'. The
 * Makefile lists the .gz as a prerequisite of this object, so editing the
 * data rebuilds it. */
#include "data/data.h"

#ifndef CLIPNN_DIGITS_GZ
#define CLIPNN_DIGITS_GZ "data/digits.csv.gz"
#endif

/* pushsection/popsection put the assembler back in whatever section the
 * compiler was emitting to: a plain .section here would leave code the
 * compiler emits after this block (sanitizer constructors) in .rodata. */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl clipnn_digits_csv_gz\n"
        ".hidden clipnn_digits_csv_gz\n"
        ".type clipnn_digits_csv_gz, @object\n"
        "clipnn_digits_csv_gz:\n"
        ".incbin \"" CLIPNN_DIGITS_GZ "\"\n"
        ".globl clipnn_digits_csv_gz_end\n"
        ".hidden clipnn_digits_csv_gz_end\n"
        ".type clipnn_digits_csv_gz_end, @object\n"
        "clipnn_digits_csv_gz_end:\n"
        ".byte 0\n"
        ".size clipnn_digits_csv_gz, clipnn_digits_csv_gz_end - clipnn_digits_csv_gz\n"
        ".size clipnn_digits_csv_gz_end, 1\n"
        ".popsection\n"
        ".pushsection .note.GNU-stack,\"\",@progbits\n"
        ".popsection\n");
