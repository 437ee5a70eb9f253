// Traps on purpose: the execution must fail with the trap's message.
#include <stdio.h>

int main(void) {
    printf("about to trap\n");
    fflush(stdout);
    __builtin_trap();
}
