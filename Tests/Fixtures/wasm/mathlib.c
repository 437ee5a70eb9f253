// A library module with no WASI: linked into other modules through ImportModules.
__attribute__((export_name("add"))) int add(int a, int b) { return a + b; }
__attribute__((export_name("triple"))) int triple(int a) { return 3 * a; }
