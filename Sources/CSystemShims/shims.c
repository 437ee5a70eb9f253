#define _GNU_SOURCE
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include "CSystemShims.h"

#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>

int cod_kill_with_parent(void) { return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); }
#else
int cod_kill_with_parent(void) { return -1; }
#endif

void cod_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int cod_sync_filesystem(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
#ifdef __linux__
    int result = syncfs(fd);
#else
    int result = fsync(fd);
#endif
    close(fd);
    return result;
}
