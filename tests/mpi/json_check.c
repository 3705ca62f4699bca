/* json_check FILE: exit 0 when FILE holds exactly one JSON object (the
 * project's strict parser: anything after it, a second document too, is an
 * error), 1 with the parser's line otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipnn.h"
#include "io/json.h"

int main(int argc, char **argv) {
    static char text[1 << 22];
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!f) {
        fprintf(stderr, "usage: json_check FILE (a readable file)\n");
        return 2;
    }
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    clipnn_json *doc = NULL;
    clipnn_status s = clipnn_json_parse(argv[1], text, len, &doc);
    int one_object = s == CLIPNN_OK && doc->type == JSON_OBJECT;
    if (!one_object) fprintf(stderr, "%s\n", s ? clipnn_last_error() : "not an object");
    clipnn_json_free(doc);
    return one_object ? 0 : 1;
}
