// Imports functions from the module "mathlib", given as an import module.
#include <stdio.h>

__attribute__((import_module("mathlib"), import_name("add"))) int add(int, int);
__attribute__((import_module("mathlib"), import_name("triple"))) int triple(int);

int main(void) {
    printf("add(2,3)=%d triple(7)=%d\n", add(2, 3), triple(7));
    return 0;
}
