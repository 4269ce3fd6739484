// Telling Node's system errors apart by their code.

/** Whether `err` is a system error with one of these codes (ENOENT, EACCES...). */
export function isCode(err: unknown, ...codes: string[]): boolean {
  return (
    typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' && codes.includes(err.code)
  );
}
