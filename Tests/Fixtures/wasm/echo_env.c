// Prints argv and selected environment variables, then exits with the code in EXIT_CODE.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *names[] = {"BACALHAU_JOB_ID", "BACALHAU_EXECUTION_ID", "BACALHAU_PARTITION_INDEX",
                           "BACALHAU_PARTITION_COUNT", "GREETING", "COD_SCHEDULED_TIME", "COD_TRIGGER", 0};
    for (int i = 0; names[i]; i++) {
        const char *value = getenv(names[i]);
        printf("%s=%s\n", names[i], value ? value : "(unset)");
    }
    fprintf(stderr, "this goes to stderr\n");
    const char *code = getenv("EXIT_CODE");
    return code ? atoi(code) : 0;
}
