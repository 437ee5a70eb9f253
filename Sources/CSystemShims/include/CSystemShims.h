#ifndef COD_SYSTEM_SHIMS_H
#define COD_SYSTEM_SHIMS_H

/// Asks Linux to send SIGKILL to this process when its parent thread exits. Returns 0 on
/// success, -1 where unsupported.
int cod_kill_with_parent(void);

#endif
