#include <stdio.h>
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
