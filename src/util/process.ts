// Whether a process id is alive on this machine (for stale-lock and stale-writer checks).

/** True when `pid` names a running process, ours or another user's (EPERM: it exists). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
