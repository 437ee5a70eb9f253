// Never ends on its own: only the execution timeout stops it.
#include <stdio.h>

int main(void) {
    printf("spinning\n");
    fflush(stdout);
    volatile unsigned long counter = 0;
    for (;;) counter++;
}
