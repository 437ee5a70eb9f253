// Keeps a core busy for SECONDS (default 2) of wall time, then says how long it ran.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void) {
    const char *s = getenv("SECONDS");
    double seconds = s ? atof(s) : 2.0;
    double start = now();
    volatile unsigned long counter = 0;
    while (now() - start < seconds) {
        for (int i = 0; i < 10000; i++) counter++;
    }
    printf("busy for %.2f s\n", now() - start);
    return 0;
}
