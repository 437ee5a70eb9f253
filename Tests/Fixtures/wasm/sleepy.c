// Sleeps for SECONDS (default 4) seconds, then prints and writes a marker.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    const char *s = getenv("SECONDS");
    int seconds = s ? atoi(s) : 4;
    sleep(seconds);
    printf("slept %d\n", seconds);
    FILE *out = fopen("/outputs/done.txt", "w");
    if (out) { fputs("done\n", out); fclose(out); }
    return 0;
}
