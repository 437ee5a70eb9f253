// A parent job without network or credentials: writes a child's spec into its spawn folder
// (write, then rename, so the node never reads half a spec), waits until the node reports the
// child completed in <name>.status, and prints that status.
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *spec =
    "{\"Name\": \"echo\", \"Type\": \"batch\", \"Tasks\": [{\"Name\": \"t\", "
    "\"Engine\": {\"Type\": \"process\", \"Params\": {\"Command\": \"sh\", \"Arguments\": [\"-c\", \"echo from-a-wasm-parent\"]}}}]}";

int main(void) {
    FILE *out = fopen("/cod/spawn/echo.json.tmp", "w");
    if (!out) { perror("open /cod/spawn/echo.json.tmp"); return 10; }
    fputs(spec, out);
    fclose(out);
    if (rename("/cod/spawn/echo.json.tmp", "/cod/spawn/echo.json") != 0) { perror("rename"); return 11; }
    char status[4096];
    struct timespec pause = {0, 100 * 1000 * 1000};
    for (int i = 0; i < 900; i++) {
        FILE *in = fopen("/cod/spawn/echo.status", "r");
        if (in) {
            size_t n = fread(status, 1, sizeof status - 1, in);
            fclose(in);
            status[n] = 0;
            if (strstr(status, "\"State\":\"Completed\"") || strstr(status, "\"State\":\"Refused\"") || strstr(status, "\"State\":\"Failed\"")) {
                fputs(status, stdout);
                return strstr(status, "Completed") ? 0 : 4;
            }
        }
        nanosleep(&pause, NULL);
    }
    puts("the child did not finish");
    return 3;
}
