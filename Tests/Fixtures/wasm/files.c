// Reads /inputs/data.txt (absolute) and writes results both by absolute path and by a path
// relative to the root, then lists what it wrote. Modules written for Bacalhau do both.
#include <stdio.h>
#include <string.h>

int main(void) {
    char line[256] = {0};
    FILE *in = fopen("/inputs/data.txt", "r");
    if (!in) { perror("open /inputs/data.txt"); return 10; }
    if (!fgets(line, sizeof line, in)) line[0] = 0;
    fclose(in);
    printf("read: %s", line);

    FILE *out = fopen("/outputs/upper.txt", "w");
    if (!out) { perror("open /outputs/upper.txt"); return 11; }
    for (char *p = line; *p; p++) fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, out);
    fclose(out);

    FILE *rel = fopen("outputs/relative.txt", "w");
    if (!rel) { perror("open outputs/relative.txt"); return 12; }
    fputs("written through a relative path\n", rel);
    fclose(rel);

    FILE *nested = fopen("inputs/nested/inner.txt", "r");
    if (nested) {
        char inner[128] = {0};
        if (fgets(inner, sizeof inner, nested)) printf("nested: %s", inner);
        fclose(nested);
    }
    return 0;
}
