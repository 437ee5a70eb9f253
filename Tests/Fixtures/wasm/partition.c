// Writes one file per partition, named after BACALHAU_PARTITION_INDEX.
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *index = getenv("BACALHAU_PARTITION_INDEX");
    const char *count = getenv("BACALHAU_PARTITION_COUNT");
    char path[64];
    snprintf(path, sizeof path, "/outputs/part-%s.txt", index ? index : "x");
    FILE *out = fopen(path, "w");
    if (!out) return 1;
    fprintf(out, "partition %s of %s\n", index, count);
    fclose(out);
    printf("partition %s of %s\n", index, count);
    return 0;
}
