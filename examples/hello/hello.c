// The sample job: greets, shows what Cod passes in, and writes a result file.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("Hello from Cod! I am partition %s of %s of job %s.\n", getenv("BACALHAU_PARTITION_INDEX"),
           getenv("BACALHAU_PARTITION_COUNT"), getenv("BACALHAU_JOB_ID"));
    for (int i = 1; i < argc; i++) printf("argument %d: %s\n", i, argv[i]);
    FILE *out = fopen("/outputs/greeting.txt", "w");
    if (!out) { perror("cannot write /outputs/greeting.txt"); return 1; }
    fprintf(out, "Hello, %s!\n", argc > 1 ? argv[1] : "world");
    fclose(out);
    return 0;
}
