/* wordcount: a real computation in C, built for WASI preview 1 with Debian's
 * clang and wasi-libc (see examples/README.md):
 *
 *   clang --target=wasm32-wasi -O2 -o wordcount.wasm wordcount.c
 *
 * Input: text (any content type; a JSON string input arrives with its quotes).
 * Result: JSON {"lines": L, "words": W, "chars": C, "longest_word": N}.
 * It declares its result type through the algohub.set_content_type import and
 * prints a progress line to stderr (the printed output, shown with stdout=true).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("algohub"), import_name("set_content_type")))
void algohub_set_content_type(const char *name, int len);

__attribute__((import_module("algohub"), import_name("set_error")))
void algohub_set_error(const char *message, int len);

int main(void) {
    const char *input_type = getenv("ALGOHUB_CONTENT_TYPE");
    if (input_type && strcmp(input_type, "binary") == 0) {
        const char *msg = "{\"message\": \"wordcount needs text, not binary input\", "
                          "\"error_type\": \"InputError\"}";
        algohub_set_error(msg, (int)strlen(msg));
        return 0;
    }
    long lines = 0, words = 0, chars = 0, longest = 0, current = 0;
    int c;
    while ((c = getchar()) != EOF) {
        chars++;
        if (c == '\n') lines++;
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            if (current > 0) words++;
            if (current > longest) longest = current;
            current = 0;
        } else {
            current++;
        }
    }
    if (current > 0) words++;
    if (current > longest) longest = current;
    fprintf(stderr, "counted %ld characters\n", chars);
    algohub_set_content_type("json", 4);
    printf("{\"lines\": %ld, \"words\": %ld, \"chars\": %ld, \"longest_word\": %ld}",
           lines, words, chars, longest);
    return 0;
}
