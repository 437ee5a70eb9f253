#ifndef COD_SYSTEM_SHIMS_H
#define COD_SYSTEM_SHIMS_H

/// Asks Linux to send SIGKILL to this process when its parent thread exits. Returns 0 on
/// success, -1 where unsupported.
int cod_kill_with_parent(void);

/// Makes standard output line-buffered, so progress shows when it goes to a file or a pipe.
void cod_line_buffer_stdout(void);

/// Flushes every written file and folder of the file system holding `path` (a folder) to
/// disk (syncfs). Returns 0 on success, -1 with errno set.
int cod_sync_filesystem(const char *path);

#endif
