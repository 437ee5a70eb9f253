// Tries to allocate MEGABYTES (default 256) MiB; reports whether the memory limit refused it.
// The memory is touched and read back so the compiler cannot elide the allocation.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *m = getenv("MEGABYTES");
    size_t megabytes = m ? (size_t)atoi(m) : 256;
    size_t bytes = megabytes * 1024 * 1024;
    volatile char *block = malloc(bytes);
    if (!block) {
        printf("allocation of %zu MiB refused\n", megabytes);
        return 3;
    }
    unsigned long sum = 0;
    for (size_t i = 0; i < bytes; i += 4096) { block[i] = (char)i; sum += block[i]; }
    printf("allocated %zu MiB (checksum %lu)\n", megabytes, sum);
    return 0;
}
